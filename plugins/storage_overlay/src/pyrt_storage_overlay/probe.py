"""The host probe: whether overlayfs works for a driver home (d_type, upper dirs
allowed there, native diff possible) and which kernel defaults to turn off, cached in
``<home>/.pyrt-overlay-probe`` keyed by home's device and the kernel release."""
from __future__ import annotations

import os

from pyrt_core.errors import DriverNotSupported

from .mounts import backing_filesystem, dir_entry_types, mount_overlay, unmount

PROBE_FILE = ".pyrt-overlay-probe"
PROBE_VERSION = "1"
_OVERLAY_PARAMS = "/sys/module/overlay/parameters"


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _kernel_defaults_to_disable() -> str:
    """Mount options turning off overlay features that the kernel enables by
    default and that would break the driver: ``index`` (refuses lower dirs
    that are another mount's upper), ``redirect_dir`` and ``metacopy``
    (their upper dirs no longer hold a layer's complete change set)."""
    extra = []
    for param, opt in (("index", "index=off"), ("redirect_dir", "redirect_dir=off"),
                       ("metacopy", "metacopy=off")):
        try:
            value = read_text(os.path.join(_OVERLAY_PARAMS, param))
        except OSError:
            continue
        if value in ("Y", "on", "1"):
            extra.append(opt)
    return "".join("," + o for o in extra)


def _probe_host(home: str) -> dict[str, str]:
    """Check d_type, that ``home`` can hold overlay upper dirs, and whether
    upper dirs are complete diffs (native diff).  Raises DriverNotSupported."""
    import tempfile

    from pyrt_core.api import remove_tree

    from .changes import is_whiteout

    extra = _kernel_defaults_to_disable()
    fstype = backing_filesystem(home)
    tmp = tempfile.mkdtemp(prefix=".probe-", dir=home)
    try:
        lower, upper, work, merged = (os.path.join(tmp, n) for n in ("lower", "upper", "work", "merged"))
        for d in (lower, upper, work, merged, os.path.join(lower, "dir")):
            os.mkdir(d)
        for f in ("file", "gone", "owned"):
            write_text(os.path.join(lower, f), "x")
        types = dir_entry_types(lower)
        if types.get("file", 0) == 0:  # DT_UNKNOWN
            raise DriverNotSupported(
                f"overlay: the backing filesystem of {home} ({fstype}) lacks d_type support "
                "(on xfs: format with ftype=1)")
        try:
            # relative to the probe dir: home may hold "," or ":"
            mount_overlay("merged", f"lowerdir=lower,upperdir=upper,workdir=work{extra}", cwd=tmp)
        except OSError as e:
            raise DriverNotSupported(
                f"overlay: {home} ({fstype}) cannot hold overlay upper directories: "
                f"mount failed: {e.strerror}") from None
        native = True
        try:
            try:
                os.rename(os.path.join(merged, "dir"), os.path.join(merged, "dir2"))
            except OSError:
                pass  # EXDEV: no redirects, userspace would copy
            os.chown(os.path.join(merged, "owned"), 1, 1)
            os.unlink(os.path.join(merged, "gone"))
            for name, xattr in (("dir2", "trusted.overlay.redirect"),
                                ("owned", "trusted.overlay.metacopy")):
                try:
                    os.getxattr(os.path.join(upper, name), xattr, follow_symlinks=False)
                    native = False
                except OSError:
                    pass
        finally:
            unmount(merged)
        try:
            if not is_whiteout(os.lstat(os.path.join(upper, "gone"))):
                native = False
        except OSError:
            native = False
    finally:
        remove_tree(tmp)
    return {"version": PROBE_VERSION, "fstype": fstype, "d_type": "true",
            "native_diff": "true" if native else "false", "mount_options": extra}


def _probe_key(home: str) -> str:
    return f"{os.stat(home).st_dev}:{os.uname().release}"


def _read_probe(home: str) -> dict[str, str] | None:
    try:
        with open(os.path.join(home, PROBE_FILE)) as f:
            data = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except (OSError, ValueError):
        return None
    if data.get("version") != PROBE_VERSION or data.get("key") != _probe_key(home):
        return None
    return data


def _check_overlay_in_kernel() -> None:
    try:
        with open("/proc/filesystems") as f:
            known = any(line.split()[-1:] == ["overlay"] for line in f)
    except OSError:
        known = False
    if not known:
        raise DriverNotSupported("overlay: the kernel does not support overlayfs "
                                 "(not in /proc/filesystems; try: modprobe overlay)")


def probe_home(home: str) -> dict[str, str]:
    """Check the host for ``home`` (cached in ``<home>/.pyrt-overlay-probe``,
    keyed by home's device and the kernel release).  Raises DriverNotSupported."""
    _check_overlay_in_kernel()
    created = False
    if not os.path.isdir(home):
        os.makedirs(home, mode=0o700)
        created = True
    cached = _read_probe(home)
    if cached is not None:
        return cached
    try:
        result = _probe_host(home)
    except BaseException:
        if created:
            os.rmdir(home)
        raise
    result["key"] = _probe_key(home)
    tmp = os.path.join(home, f".{PROBE_FILE}.{os.getpid()}")
    write_text(tmp, "".join(f"{k}={v}\n" for k, v in sorted(result.items())))
    os.rename(tmp, os.path.join(home, PROBE_FILE))
    return result
