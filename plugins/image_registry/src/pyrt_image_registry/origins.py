"""Where a registry's credentials may go.

The credentials pyrt holds for a registry (``pyrt login``, ``--creds``) and the
tokens the registry's token server issues belong to that registry; a hostile
or compromised registry, or anyone on the path of a plain-http hop, must not
be able to send them elsewhere:

* The ``Authorization`` header (Basic credentials or a Bearer token) goes only
  to the registry's own *origin*: the scheme, host and port the ``/v2/`` probe
  settled on (:func:`origin`; a missing port is the scheme's default).  A
  redirect or an upload ``Location`` that changes any of the three gets none,
  so an https registry cannot move the header to plain http on its own host.
  docker decides the same way, per request, from the (scheme, host:port) the
  ``/v2/`` challenge came from.
* The Basic credentials go to a Bearer token realm (:func:`realm_withholds`)
  only over TLS, unless the registry is configured insecure, and only on the
  registry's host (any port: token servers often listen beside the registry)
  or, over TLS, in the registry's own domain: a realm whose host is the
  registry host's parent domain or under it (``registry-1.docker.io`` ->
  ``auth.docker.io``, ``registry.gitlab.example`` -> ``gitlab.example``).
  Any other realm is asked for a token anonymously.  docker and podman send
  the credentials to whatever realm the registry names, plain http included;
  this is the stricter rule, which keeps Docker Hub's and GitLab's layouts
  working.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

# second-level labels under which a country code's registrable names live
# ("example.co.uk"): a parent domain such as "co.uk" is nobody's own domain
_PUBLIC_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gob", "gov", "gv", "go", "ltd", "me",
                                  "mil", "ne", "net", "nic", "nom", "or", "org", "plc", "sch"})


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of ``url``, lower-cased, default port filled in; None
    for a URL without a host or with a bad port."""
    u = urlsplit(url)
    scheme = u.scheme.lower()
    try:
        port = u.port
    except ValueError:
        return None
    host = (u.hostname or "").lower()
    if not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme, 0)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def same_domain(registry_host: str, other: str) -> bool:
    """Whether ``other`` is the parent domain of ``registry_host`` or a name under it.
    Never for IP addresses; never when that parent is a top-level domain or a
    country code's public second level ("co.uk")."""
    if _is_ip(registry_host) or _is_ip(other):
        return False
    labels = registry_host.rstrip(".").split(".")[1:]
    if len(labels) < 2:
        return False
    if len(labels) == 2 and len(labels[1]) == 2 and labels[0] in _PUBLIC_SECOND_LEVEL:
        return False
    parent = ".".join(labels)
    other = other.rstrip(".")
    return other == parent or other.endswith("." + parent)


def realm_withholds(realm: str, endpoint: str, insecure: bool) -> str | None:
    """Why the registry ``endpoint``'s (host[:port]) Basic credentials must not go to
    the token realm ``realm`` (an absolute URL); None when they may."""
    r = origin(realm)
    reg = origin("//" + endpoint)
    if r is None or reg is None:
        return "not a usable URL"
    scheme, host, _ = r
    reg_host = reg[1]
    if scheme != "https" and not insecure:
        return "plain http"
    if host == reg_host:
        return None
    if scheme != "https":
        return "plain http on another host"
    if same_domain(reg_host, host):
        return None
    return "another host"
