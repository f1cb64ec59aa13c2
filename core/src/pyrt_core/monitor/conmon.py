"""Starting conmon for a container, and the files it leaves.

Per container (``<runroot>`` is the engine's run root)::

    <runroot>/containers/<id>/        the OCI bundle, also conmon's working files:
        config.json hostname hosts resolv.conf
        pidfile          the init's host pid (written by pyrt-runtime create)
        conmon.pid       conmon's pid
        ctl winsz        conmon's control FIFOs ("1 H W\\n": resize the pty)
        attach           conmon's attach socket (SOCK_SEQPACKET)
        runtime.log      pyrt-runtime's errors (json lines)
        conmon.log       conmon's own stderr
    <runroot>/runtime/<id>/          pyrt-runtime's state (see runtime.state)
    <runroot>/exits/<id>             the exit code, written by conmon
    <runroot>/socket/<id>            conmon's symlink to the bundle
    <root>/containers/<id>/ctr.log   the output, k8s-file format (see monitor.logdrivers)
"""
from __future__ import annotations

import os
import sys

from ..errors import ExecError, RuntimeError_
from ..fsutil import remove_tree_quietly, which
from ..jsonlean import loads as json_loads  # not json: re and enum, ~6 ms
from .logdrivers import conmon_log_args, file_driver

CANDIDATES = ("/usr/bin/conmon", "/usr/libexec/podman/conmon", "/usr/local/bin/conmon",
              "/usr/local/libexec/podman/conmon")
DEFAULT_LOG_SIZE_MAX = 10 * 1024 * 1024


def find_conmon() -> str:
    path = os.environ.get("PYRT_CONMON") or which("conmon")
    if path:
        return path
    for c in CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    raise RuntimeError_("conmon is not installed: detached containers need it as their monitor "
                        "(apt-get install conmon)")


def find_runtime() -> str:
    """The ``pyrt-runtime`` console script next to the running interpreter, else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "pyrt-runtime")
    if os.access(here, os.X_OK):
        return here
    found = which("pyrt-runtime")
    if found:
        return found
    raise RuntimeError_("pyrt-runtime is not installed (reinstall pyrt-core)")


def find_pyrt() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "pyrt")
    if os.access(here, os.X_OK):
        return here
    return which("pyrt") or "pyrt"


class Paths:
    def __init__(self, root: str, runroot: str, cid: str):
        self.id = cid
        self.bundle = os.path.join(runroot, "containers", cid)
        self.runtime_root = os.path.join(runroot, "runtime")
        self.exit_dir = os.path.join(runroot, "exits")
        self.exit_file = os.path.join(self.exit_dir, cid)
        self.socket_dir = os.path.join(runroot, "socket")
        self.log = os.path.join(root, "containers", cid, "ctr.log")
        self.pidfile = os.path.join(self.bundle, "pidfile")
        self.conmon_pidfile = os.path.join(self.bundle, "conmon.pid")
        self.runtime_log = os.path.join(self.bundle, "runtime.log")
        self.conmon_log = os.path.join(self.bundle, "conmon.log")
        self.ctl = os.path.join(self.bundle, "ctl")
        self.attach = os.path.join(self.bundle, "attach")
        self.ready = os.path.join(self.bundle, "ready")
        #: made by ``stop`` and ``rm -f`` before they signal: they clean the run up
        #: themselves, so conmon's exit command (see :func:`exit_command`) starts no pyrt
        self.stopping = os.path.join(self.bundle, "stopping")


def mark_stopping(paths: Paths) -> None:
    """Tell this run's exit command that the caller (``stop``, ``rm -f``) cleans the run up:
    it then ends without starting an interpreter.  Should the caller die before it cleaned
    up, the next command's recovery does (the monitor is gone by then), as after any lost
    monitor: conmon's exit file still gives the exit code."""
    try:
        os.close(os.open(paths.stopping, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600))
    except OSError:
        pass  # no bundle (a run that is over): the exit command finds nothing to do


def read_exit_file(path: str) -> tuple[int, float] | None:
    """(exit code, mtime) from conmon's exit file, or None when it is not there (yet)."""
    try:
        with open(path) as f:
            text = f.read().strip()
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    try:
        return int(text), mtime
    except ValueError:
        return None


def read_pid(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _runtime_error(paths: Paths) -> tuple[str, int | None]:
    """The runtime's last error line, and the exit code it asked for (126/127), if any."""
    try:
        with open(paths.runtime_log) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        code = None
        try:
            rec = json_loads(line)
            msg, code = rec.get("msg"), rec.get("exitCode")
        except (ValueError, AttributeError):
            msg = line
        if msg:
            return msg, code if code in (126, 127) else None
    try:
        with open(paths.conmon_log) as f:
            text = f.read().strip()
        if text:
            return text.splitlines()[-1], None
    except OSError:
        pass
    return "", None


class Launch:
    """A conmon started by :func:`launch`: ``ready()`` lets its runtime read the bundle,
    ``wait()`` returns (init pid, conmon pid) once the container is created."""

    def __init__(self, paths: Paths, sync_fd: int, ready_fd: int | None,
                 exit_command: list[str] | None = None):
        self.paths = paths
        self.exit_command = list(exit_command or [])
        self.run: int | None = None  # the run number its exit command names (Engine.prelaunch)
        self.io: tuple = ()  # (stdin, tty, log_size_max) conmon was started with
        self.dir_lock = None  # Engine.prelaunch: the lock of the record-less container dir
        self._sync = sync_fd
        self._ready = ready_fd
        self._sent = False

    def release_dir_lock(self) -> None:
        if self.dir_lock is not None:
            self.dir_lock.release()
            self.dir_lock = None

    def ready(self) -> None:
        # the byte stays in the FIFO only while a writer holds it open: keep our end
        # until the runtime reported (wait) -- and if we die, the runtime reads EOF
        if self._ready is not None and not self._sent:
            os.write(self._ready, b"1")
            self._sent = True

    def _close_ready(self) -> None:
        if self._ready is not None:
            os.close(self._ready)
            self._ready = None

    def abort(self) -> None:
        """The bundle will never be ready: the runtime reads EOF and gives up."""
        self._close_ready()
        if self._sync < 0:
            return  # already reported
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - it failed, as asked
            pass

    def wait(self) -> tuple[int, int]:
        self.ready()
        data = b""
        try:
            while b"\n" not in data:
                chunk = os.read(self._sync, 4096)
                if not chunk:
                    break
                data += chunk
        finally:
            self._close_ready()
            if self._sync >= 0:
                os.close(self._sync)
                self._sync = -1
        try:
            msg = json_loads(data.split(b"\n")[0] or b"{}")
        except ValueError:
            msg = {}
        pid = msg.get("data", -1)
        pid = pid if isinstance(pid, int) else -1
        if pid <= 0:
            detail, code = _runtime_error(self.paths)
            detail = detail or msg.get("message") or "conmon gave no reason"
            if code is not None:  # the command cannot be found (127) or run (126)
                raise ExecError(detail, code)
            err = RuntimeError_(f"creating the container failed: {detail}")
            raise err
        return pid, read_pid(self.paths.conmon_pidfile)


def launch(paths: Paths, *, name: str, exit_command: list[str], stdin: bool, tty: bool,
           log_size_max: int | None, disabled_plugins: list[str] | None = None,
           runtime: str | None = None, conmon: str | None = None, early: bool = True,
           runtime_root: str | None = None, log_driver: str | None = None,
           log_tag: str | None = None) -> Launch:
    """Start conmon, which runs ``pyrt-runtime create``.

    With ``early`` the bundle need not be written yet: the runtime loads its code,
    then waits on the FIFO ``<bundle>/ready`` (``PYRT_RUNTIME_READY``) until
    :meth:`Launch.ready`, so its start-up overlaps the engine's mount and bundle
    work.  conmon detaches (its own session); its exit command runs when the
    container exits.

    ``runtime_root``: another OCI runtime's (``runtime``, see monitor.ociruntime) state
    directory; that runtime does not wait for the bundle (``early`` must be False) and
    takes no pyrt option."""
    if runtime_root is not None and early:
        raise ValueError("another OCI runtime cannot start before the bundle is written")
    conmon = conmon or find_conmon()
    runtime = runtime or find_runtime()
    for d in (paths.exit_dir, paths.socket_dir, runtime_root or paths.runtime_root, paths.bundle):
        os.makedirs(d, mode=0o700, exist_ok=True)
    for p in (paths.exit_file, paths.runtime_log, paths.pidfile, paths.conmon_pidfile,
              paths.ready, paths.stopping):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    argv = [conmon, "--api-version", "1", "-c", paths.id, "-u", paths.id, "-n", name or paths.id,
            "-r", runtime, "-b", paths.bundle, "-p", paths.pidfile, "-P", paths.conmon_pidfile,
            *conmon_log_args(log_driver, paths.log), "--exit-dir", paths.exit_dir,
            "--socket-dir-path", paths.socket_dir, "--full-attach",
            "--runtime-arg", "--root", "--runtime-arg", runtime_root or paths.runtime_root,
            "--runtime-arg", "--log", "--runtime-arg", paths.runtime_log,
            "--runtime-arg", "--log-format", "--runtime-arg", "json",
            "--log-level", "error"]
    if disabled_plugins and runtime_root is None:
        argv += ["--runtime-arg", "--disable-plugins", "--runtime-arg", ",".join(disabled_plugins)]
    if log_tag:
        argv += ["--log-tag", log_tag]
    size = DEFAULT_LOG_SIZE_MAX if log_size_max is None else log_size_max
    if size and size > 0 and file_driver(log_driver):
        argv += ["--log-size-max", str(size)]
    if stdin:
        argv.append("-i")
    if tty:
        argv.append("-t")
        if stdin:
            # docker's -it: detaching (ctrl-p ctrl-q) must not close the terminal's input;
            # without a tty, a client's EOF closes the container's stdin (docker's StdinOnce)
            argv.append("--leave-stdin-open")
    if exit_command:
        argv += ["--exit-command", exit_command[0]]
        for a in exit_command[1:]:
            argv += ["--exit-command-arg", a]
    ready = None
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("PYRT_RUNTIME_READY", None)
    if early:
        os.mkfifo(paths.ready, 0o600)
        ready = os.open(paths.ready, os.O_RDWR | os.O_CLOEXEC)  # EOF for the runtime if we die
        env["PYRT_RUNTIME_READY"] = paths.ready
    r, w = os.pipe()
    try:
        env["_OCI_SYNCPIPE"] = str(w)
        _spawn_detached(argv, env, paths.bundle, paths.conmon_log, w)
        os.close(w)
        w = -1
    except BaseException:
        os.close(r)
        if ready is not None:
            os.close(ready)
        raise
    finally:
        if w >= 0:
            os.close(w)
    launched = Launch(paths, r, ready, exit_command)
    launched.io = (stdin, tty, log_size_max)
    return launched


#: the exit command's shell: ``pyrt container cleanup`` unless the run's ``stopping`` mark
#: is there ($0 is the mark, "$@" the pyrt command line)
EXIT_SHELL = '[ -e "$0" ] || exec "$@"'


def exit_command(settings, driver: str, cid: str, run: int) -> list[str]:
    """conmon's exit command for run ``run`` of container ``cid``: ``pyrt container cleanup``,
    through ``/bin/sh``, which skips it when ``stop`` or ``rm -f`` made the run's
    ``stopping`` mark (:func:`mark_stopping`): they clean up themselves, and a second
    Python process would only compete with them for the CPU and the container's lock."""
    argv = [find_pyrt(), "--root", settings.root, "--runroot", settings.runroot,
            "--storage-driver", driver]
    if settings.config_file:
        argv += ["--config", settings.config_file]
    mark = Paths(settings.root, settings.runroot, cid).stopping
    return ["/bin/sh", "-c", EXIT_SHELL, mark] + argv + ["container", "cleanup", "--run", str(run), cid]


def prelaunch(settings, store, cid: str, *, name: str | None = None, stdin: bool = False,
              tty: bool = False, log_size_max: int | None = None) -> Launch | None:
    """For ``run -d``: start conmon for the container ``cid`` before it exists, so that its
    runtime (a second Python process) loads its code and plugins while this process
    loads its own, creates the container, mounts its root and writes the bundle (the
    runtime waits for the bundle, see :func:`launch`).  Needs only the settings (no
    engine, no attrs).  Hand the result to ``Engine.start`` (first run) or
    :func:`abandon`.  None when the storage driver is not known yet (a new store: the
    exit command names it)."""
    from ..storage.select import recorded_driver

    driver = settings.storage_driver or recorded_driver(settings.root)
    if not driver:
        return None
    settings.export_plugin_env()  # as Engine(): the runtime's plugins read their settings there
    paths = Paths(settings.root, settings.runroot, cid)
    dir_lock = store.prepare_dir(cid)  # conmon opens the log there at once
    try:
        launched = launch(paths, name=name or cid, exit_command=exit_command(settings, driver, cid, 1),
                          stdin=stdin, tty=tty, log_size_max=log_size_max,
                          disabled_plugins=settings.disabled_plugins)
    except BaseException:
        store.discard_prepared(cid)
        remove_tree_quietly(paths.bundle)
        dir_lock.release()
        raise
    launched.run = 1
    launched.dir_lock = dir_lock  # released by Engine.start or abandon
    return launched


def abandon(launched: Launch, store) -> None:
    """Stop a monitor :func:`prelaunch` started that no container uses: its runtime reads
    EOF and exits, and so does conmon; the directories go unless a record owns them."""
    launched.abort()
    cid = launched.paths.id
    if store.load(cid) is None:
        remove_tree_quietly(launched.paths.bundle)
        try:
            os.unlink(os.path.join(launched.paths.socket_dir, cid))
        except OSError:
            pass
        store.discard_prepared(cid)
    launched.release_dir_lock()


def _spawn_detached(argv: list[str], env: dict, cwd: str, stderr_path: str, pass_fd: int) -> None:
    """Run conmon in a new session (stdin/stdout /dev/null, stderr appended to
    ``stderr_path``, ``pass_fd`` inherited) and wait for it: conmon forks, and its
    parent returns at once.  fork + exec by hand: ``subprocess`` costs ~5 ms to import
    on the path of `run -d`.  A failed exec raises RuntimeError_ (one line, exit 125)."""
    err_r, err_w = os.pipe()  # close-on-exec: EOF = the exec worked
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(err_r)
            os.setsid()
            os.chdir(cwd)
            null = os.open(os.devnull, os.O_RDWR)
            log = os.open(stderr_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(log, 2)
            os.set_inheritable(pass_fd, True)
            os.execve(argv[0], argv, env)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            try:
                os.write(err_w, f"{getattr(e, 'errno', 0) or 0}:{e}".encode()[:500])
            finally:
                os._exit(127)
    os.close(err_w)
    try:
        msg = b""
        while True:
            chunk = os.read(err_r, 512)
            if not chunk:
                break
            msg += chunk
    finally:
        os.close(err_r)
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    if msg:
        text = msg.decode(errors="replace").partition(":")[2]
        raise RuntimeError_(f"cannot run the monitor {argv[0]}: {text}")


def spawn(paths: Paths, **kw) -> tuple[int, int]:
    """:func:`launch` with the bundle already written, and wait: (init pid, conmon pid)."""
    return launch(paths, early=False, **kw).wait()


def resize(paths: Paths, rows: int, cols: int) -> None:
    """Ask conmon to set the container's pty size."""
    try:
        fd = os.open(paths.ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, f"1 {rows} {cols}\n".encode())
    except OSError:
        pass
    finally:
        os.close(fd)
