"""Network namespace setup done from inside: bring the loopback interface up."""
from __future__ import annotations

import _socket  # socket.py would import enum and selectors (~7 ms)
import fcntl
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: name[IFNAMSIZ], short ifr_flags, padding to 40 bytes


def set_up(name: str = "lo") -> None:
    """Set IFF_UP on an interface of the current network namespace (needs CAP_NET_ADMIN)."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack(_IFREQ, name.encode(), 0))
        flags = struct.unpack(_IFREQ, res)[1] & 0xFFFF
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS,
                        struct.pack(_IFREQ, name.encode(), _signed16(flags | IFF_UP)))
    except OSError as e:
        raise OSError(e.errno, f"bringing up interface {name}: {e.strerror}") from None
    finally:
        s.close()


def _signed16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v
