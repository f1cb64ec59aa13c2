"""The registry HTTP client (distribution API v2), on ``http.client`` and ``ssl``.

* One keep-alive connection per thread and host (downloads run in threads).
* ``/v2/`` probe (:meth:`Client.ping`) picks the scheme: ``https``; for an
  insecure registry (configured, or ``--tls-verify=false``) unverified
  ``https`` and then plain ``http``.
* Auth: anonymous; ``Basic`` with the stored credentials; ``Bearer`` tokens
  from the challenge's realm/service/scope, cached per scope, refreshed
  before they expire (``expires_in`` below 60 s counts as 60 s) and after a
  401.
* Credentials stay with the registry (:mod:`.origins`): the ``Authorization``
  header (Basic or the registry's token) goes only to the registry's own
  origin (scheme, host and port of the ``/v2/`` probe), so a redirect or an
  upload ``Location`` that changes any of them, or a redirect chain that left
  the origin once, gets none; the Basic credentials go to a token realm
  only on the registry's host or domain, over TLS unless the registry is
  configured insecure; any other realm is asked anonymously.
* Retries with exponential back-off (``Retry-After`` honoured) on 429, 5xx
  and failures that can recover (dropped connections, time-outs, refused
  connections and temporary resolver failures at most twice); a name that
  does not resolve and TLS verification failures are final at once.
* TLS: the system CAs plus ``<certs_dir>/<host:port>/*.crt`` (docker's
  ``certs.d`` layout), client certificates ``*.cert``/``*.key``.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import ssl
import threading
import time
from urllib.parse import urlencode, urljoin, urlsplit

from pyrt_core.errors import ImageError, NotFoundError

from . import authfile
from .options import RegistryOptions
from .origins import origin, realm_withholds

USER_AGENT = "pyrt/0.1 (image-registry)"
DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


class RegistryError(ImageError):
    """The registry refused a request, answered nonsense or could not be reached."""


class AuthError(RegistryError):
    """Authentication with the registry failed."""


def split_reference(ref) -> tuple[str, str]:
    """(registry host, repository path) of an :class:`ImageReference`;
    docker.io's single-component names get ``library/``."""
    host = ref.registry or DOCKER_HUB
    repo = ref.repository
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
        if "/" not in repo:
            repo = "library/" + repo
    return host, repo


_PARAM = re.compile(r'([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` -> ("bearer", {realm, service, …})."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is the registry running?)"
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {e.verify_message or e} " \
               f"(add the registry's CA to <certs-dir>/HOST:PORT/ca.crt, or mark it insecure)"
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e.reason or e}"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host: {e.strerror or e}"
    if isinstance(e, http.client.RemoteDisconnected):
        return "the registry closed the connection"
    if isinstance(e, http.client.IncompleteRead):
        return "connection dropped in the middle of a response"
    if isinstance(e, OSError):
        return e.strerror or str(e) or type(e).__name__
    return str(e) or type(e).__name__


def _retries_for(e: BaseException, retries: int) -> int:
    """How often a failed attempt that raised ``e`` may be repeated: 0 for what cannot
    recover by itself (a name that does not resolve, a TLS certificate that does not
    verify); at most 2 for a refused connection or a temporary resolver failure
    (``EAI_AGAIN``: the resolver got no answer, it did not say the name is unknown),
    which a restarting registry or resolver recovers from within a second or two;
    ``retries`` for dropped connections and time-outs."""
    if isinstance(e, socket.gaierror):
        return min(retries, 2) if e.errno == socket.EAI_AGAIN else 0
    if isinstance(e, ssl.SSLCertVerificationError):
        return 0
    if isinstance(e, ConnectionRefusedError):
        return min(retries, 2)
    return retries


def _registry_message(data: bytes) -> str:
    try:
        doc = json.loads(data)
        errs = doc.get("errors") if isinstance(doc, dict) else None
        if errs:
            return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs
                             if isinstance(e, dict))
    except (ValueError, UnicodeDecodeError):
        pass
    text = data[:200].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def _retry_after(resp) -> float | None:
    v = resp.getheader("Retry-After")
    if v and v.strip().isdigit():
        return min(float(v.strip()), 10.0)
    return None


class Client:
    """Talks to one registry for one repository (and, for mounts, others)."""

    def __init__(self, host: str, options: RegistryOptions | None = None):
        self.host = host
        self.opts = options or RegistryOptions()
        self.endpoint = DOCKER_HUB_ENDPOINT if host == DOCKER_HUB else host
        self.insecure = self.opts.is_insecure(host)
        self.scheme: str | None = None
        self._verify = True
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._auth_scheme: str | None = None  # None (unknown/anonymous) | "basic" | "bearer"
        self._challenge: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._ssl_ctx: dict[bool, ssl.SSLContext] = {}
        self.creds = self.opts.credentials or authfile.lookup(host, self.opts.authfile)
        self._withheld: tuple[str, str] | None = None  # (realm, why) the credentials did not go to
        self.requests = 0  # requests sent (for tests and benchmarks)

    # -- connections ----------------------------------------------------------------
    def ssl_context(self, verify: bool, netloc: str | None = None) -> ssl.SSLContext:
        with self._lock:
            ctx = self._ssl_ctx.get(verify)
            if ctx is not None:
                return ctx
            ctx = ssl.create_default_context()
            for d in self.opts.certs_dirs:
                hd = os.path.join(d, self.host)
                if not os.path.isdir(hd):
                    continue
                for name in sorted(os.listdir(hd)):
                    p = os.path.join(hd, name)
                    try:
                        if name.endswith(".crt"):
                            ctx.load_verify_locations(cafile=p)
                        elif name.endswith(".cert"):
                            key = p[:-5] + ".key"
                            ctx.load_cert_chain(p, key if os.path.exists(key) else None)
                    except (OSError, ssl.SSLError) as e:
                        raise RegistryError(f"{self.host}: cannot use {p}: {e}") from None
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl_ctx[verify] = ctx
            return ctx

    def _conn(self, scheme: str, netloc: str):
        pool = self._tls.__dict__.setdefault("pool", {})
        c = pool.get((scheme, netloc))
        if c is None:
            if scheme == "https":
                verify = self._verify if netloc == self.endpoint else True
                c = http.client.HTTPSConnection(netloc, timeout=self.opts.timeout,
                                                context=self.ssl_context(verify))
            else:
                c = http.client.HTTPConnection(netloc, timeout=self.opts.timeout)
            pool[(scheme, netloc)] = c
        return c

    def _drop(self, scheme: str, netloc: str) -> None:
        pool = self._tls.__dict__.setdefault("pool", {})
        c = pool.pop((scheme, netloc), None)
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def close(self) -> None:
        for key in list(self._tls.__dict__.get("pool", {})):
            self._drop(*key)

    def _send(self, method: str, url: str, headers: dict, body=None):
        u = urlsplit(url)
        target = u.path + ("?" + u.query if u.query else "")
        h = {"User-Agent": USER_AGENT, **headers}
        data = body() if callable(body) else body
        if data is None and method in ("PUT", "POST", "PATCH"):
            h.setdefault("Content-Length", "0")
        conn = self._conn(u.scheme, u.netloc)
        self.requests += 1
        try:
            conn.request(method, target or "/", body=data, headers=h)
            resp = conn.getresponse()
        except BaseException:
            self._drop(u.scheme, u.netloc)
            raise
        finally:
            if hasattr(data, "close"):
                data.close()
        resp._pyrt_key = (u.scheme, u.netloc)
        return resp

    def release(self, resp, reuse: bool = True) -> None:
        """Done with a streamed response: keep its connection only if fully read."""
        if not reuse or not resp.isclosed():
            try:
                resp.close()
            except Exception:
                pass
            self._drop(*resp._pyrt_key)

    # -- the probe ----------------------------------------------------------------------
    @property
    def base(self) -> str:
        if self.scheme is None:
            self.ping()
        return f"{self.scheme}://{self.endpoint}"

    def ping(self) -> None:
        """``GET /v2/``: pick the scheme and learn how the registry authenticates."""
        if self.scheme is not None:
            return
        tries = [("https", not self.insecure)]
        if self.insecure:
            tries.append(("http", True))
        last = None
        for scheme, verify in tries:
            self._verify = verify
            url = f"{scheme}://{self.endpoint}/v2/"
            try:
                attempt = 0
                while True:
                    resp = self._with_retries(lambda: self._send("GET", url, {}), "GET /v2/")
                    if (resp.status == 429 or resp.status >= 500) and attempt < self.opts.retries:
                        delay = _retry_after(resp) or self._delay(attempt + 1)
                        resp.read()
                        attempt += 1
                        time.sleep(delay)
                        continue
                    break
            except RegistryError as e:
                last = e
                cause = e.__cause__
                if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLCertVerificationError):
                    continue  # plain http behind an insecure name: try http
                if isinstance(cause, (ConnectionResetError, http.client.RemoteDisconnected)):
                    continue
                raise
            data = resp.read()
            if resp.status == 401:
                self._note_challenge(resp.getheader("WWW-Authenticate", ""))
            elif resp.status == 404:
                raise RegistryError(f"{self.host} does not speak the registry API v2 (GET /v2/: 404)")
            elif resp.status >= 300:
                raise RegistryError(f"{self.host}: GET /v2/: HTTP {resp.status}: {_registry_message(data)}")
            self.scheme = scheme
            return
        raise last  # type: ignore[misc]

    def _with_retries(self, fn, what: str):
        """Run ``fn`` (one attempt), retrying failed connections that can recover."""
        attempt = 0
        while True:
            try:
                return fn()
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, ssl.SSLError) or attempt >= _retries_for(e, self.opts.retries):
                    raise RegistryError(f"{self.host}: {what}: {_describe(e)}") from e
                attempt += 1
                time.sleep(self._delay(attempt))

    def _delay(self, attempt: int) -> float:
        return min(self.opts.backoff * (2 ** (attempt - 1)), 8.0)

    # -- auth ---------------------------------------------------------------------------
    def _note_challenge(self, header: str) -> None:
        scheme, params = parse_challenge(header)
        if scheme == "bearer" and params.get("realm"):
            self._auth_scheme = "bearer"
            self._challenge = params
        elif scheme == "basic":
            self._auth_scheme = "basic"
            self._challenge = params
        else:
            raise RegistryError(f"{self.host}: unsupported authentication challenge {header!r}")

    def _basic_header(self) -> str:
        user, pw = self.creds  # type: ignore[misc]
        return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    def _authorization(self, scope: str | None, refresh: bool = False) -> str | None:
        if self._auth_scheme == "basic":
            if not self.creds:
                raise AuthError(f"{self.host}: authentication required: log in with "
                                f"`pyrt login {self.host}`")
            return self._basic_header()
        if self._auth_scheme == "bearer":
            key = scope or ""
            with self._lock:
                tok = self._tokens.get(key)
            if tok is None or refresh or time.time() >= tok[1]:
                tok = self._fetch_token(scope)
                with self._lock:
                    self._tokens[key] = tok
            return "Bearer " + tok[0]
        return None

    def _realm(self) -> str:
        """The challenge's token realm as an absolute URL (a relative one is the registry's)."""
        realm = urljoin(self.base + "/", self._challenge["realm"])
        if urlsplit(realm).scheme.lower() not in ("http", "https") or not urlsplit(realm).hostname:
            raise AuthError(f"{self.host}: the registry names an unusable token realm {realm!r}")
        return realm

    def _withheld_note(self) -> str:
        realm, why = self._withheld  # type: ignore[misc]
        return (f"the credentials for {self.host} are not sent to the token server {realm} ({why}; "
                f"they go only to the registry's own host or domain, over TLS unless the registry "
                f"is configured insecure)")

    def _fetch_token(self, scope: str | None) -> tuple[str, float]:
        ch = self._challenge
        realm = self._realm()
        q = []
        if ch.get("service"):
            q.append(("service", ch["service"]))
        for s in (scope or ch.get("scope") or "").split(" "):
            if s:
                q.append(("scope", s))
        url = realm + ("&" if "?" in realm else "?") + urlencode(q)
        headers = {"Accept": "application/json"}
        if self.creds:
            why = realm_withholds(realm, self.endpoint, self.insecure)
            if why is None:
                headers["Authorization"] = self._basic_header()
            else:
                self._withheld = (realm, why)  # asked anonymously, as if not logged in
        resp = self._with_retries(lambda: self._send("GET", url, headers), "token request")
        data = resp.read()
        if resp.status in (401, 403):
            if "Authorization" in headers:
                raise AuthError(f"{self.host}: authentication failed: wrong username or password "
                                f"(token server said HTTP {resp.status})")
            if self._withheld:
                raise AuthError(f"{self.host}: authentication required: {self._withheld_note()}")
            raise AuthError(f"{self.host}: authentication required: log in with `pyrt login {self.host}`")
        if resp.status != 200:
            raise AuthError(f"{self.host}: token request failed: HTTP {resp.status}: {_registry_message(data)}")
        try:
            doc = json.loads(data)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError, UnicodeDecodeError):
            token = None
            doc = {}
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.host}: the token server answered without a token")
        try:
            life = max(int(doc.get("expires_in") or 60), 60)
        except (TypeError, ValueError):
            life = 60
        return token, time.time() + life - 10

    # -- requests -----------------------------------------------------------------------
    def request(self, method: str, path: str, headers: dict | None = None, body=None,
                scope: str | None = None, ok=(200,), stream: bool = False, what: str = "",
                not_found: str | None = None):
        """Send a request with auth, retries and redirects.  Returns
        ``(response, body bytes)`` (``body`` None when ``stream``: read the
        response, then :meth:`release` it).  ``body`` may be bytes or a
        callable returning a fresh body (a file) for each attempt."""
        url = path if "://" in path else self.base + path
        what = what or f"{method} {urlsplit(url).path}"
        attempt = 0
        auth_tries = 0
        redirects = 0
        rejected = False
        # the registry's credentials go to its own origin only, and not even there once a
        # redirect chain has been elsewhere (that hop chose where it sends us back)
        own = self.is_own(url)
        while True:
            h = dict(headers or {})
            if own:
                a = self._authorization(scope, refresh=rejected)
                if a:
                    h["Authorization"] = a
            try:
                resp = self._send(method, url, h, body)
            except (OSError, http.client.HTTPException) as e:
                if attempt >= _retries_for(e, self.opts.retries):
                    raise RegistryError(f"{self.host}: {what}: {_describe(e)}") from e
                attempt += 1
                time.sleep(self._delay(attempt))
                continue
            st = resp.status
            if st in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                resp.read()
                redirects += 1
                if redirects > 5:
                    raise RegistryError(f"{self.host}: {what}: too many redirects")
                url = urljoin(url, resp.getheader("Location"))
                if urlsplit(url).scheme.lower() not in ("http", "https"):
                    raise RegistryError(f"{self.host}: {what}: redirected to {url!r}, not http(s)")
                own = own and self.is_own(url)
                if st == 303:
                    method, body = "GET", None
                continue
            if st == 401 and own and auth_tries < 2:
                chal = resp.getheader("WWW-Authenticate", "")
                resp.read()
                if "Authorization" in h and self._auth_scheme == "basic":
                    raise AuthError(f"{self.host}: authentication failed: wrong username or password")
                auth_tries += 1
                self._note_challenge(chal)
                rejected = "Authorization" in h
                continue
            if (st == 429 or st >= 500) and attempt < self.opts.retries:
                delay = _retry_after(resp) or self._delay(attempt + 1)
                resp.read()
                attempt += 1
                time.sleep(delay)
                continue
            if st in ok:
                if stream:
                    return resp, None
                return resp, resp.read()
            data = resp.read()
            raise self._error(st, data, what, not_found)

    def is_own(self, url: str) -> bool:
        """Whether ``url`` is on the registry's own origin (scheme, host, port of the probe)."""
        return origin(url) == origin(self.base)

    def _error(self, status: int, data: bytes, what: str, not_found: str | None):
        msg = _registry_message(data)
        if status == 401:
            if self._withheld:
                return AuthError(f"{self.host}: authentication required: {self._withheld_note()}")
            if self.creds:
                return AuthError(f"{self.host}: authentication failed: wrong username or password ({msg})")
            return AuthError(f"{self.host}: authentication required: log in with `pyrt login {self.host}` ({msg})")
        if status == 403:
            return AuthError(f"{self.host}: {what}: access denied ({msg})")
        if status == 404 and not_found:
            return NotFoundError(f"{not_found} ({msg})" if msg else not_found)
        if status == 429:
            return RegistryError(f"{self.host}: {what}: too many requests (HTTP 429) after "
                                 f"{self.opts.retries} retries")
        return RegistryError(f"{self.host}: {what}: HTTP {status}" + (f": {msg}" if msg else ""))

    def login_check(self) -> None:
        """Verify the stored/given credentials against the registry (for ``pyrt login``)."""
        self.ping()
        if self._auth_scheme is None:
            return  # no auth needed: docker accepts the login too
        if self._auth_scheme == "basic":
            resp, _ = self.request("GET", "/v2/", ok=(200,), what="GET /v2/")
            return
        self._tokens.clear()
        tok = self._fetch_token(None)
        if self._withheld:  # an anonymous token proves nothing about the credentials
            raise AuthError(f"{self.host}: cannot check the credentials: {self._withheld_note()}")
        resp = self._send("GET", self.base + "/v2/", {"Authorization": "Bearer " + tok[0]})
        resp.read()
        if resp.status == 401:
            raise AuthError(f"{self.host}: authentication failed: wrong username or password")
