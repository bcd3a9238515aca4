"""Load and chaos only ever target this machine: the one test of that, shared by both lanes."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_url(url: str) -> bool:
    """True only for a literal 127.0.0.0/8 or ::1 address, or `localhost` (not a name that merely starts with 127.)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
