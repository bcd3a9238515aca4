"""Load and chaos only ever target this machine: the one test of that, shared by both lanes."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """True only for a literal 127.0.0.0/8 or ::1 address (brackets allowed), or `localhost`."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True only for a literal 127.0.0.0/8 or ::1 address, or `localhost` (not a name that merely starts with 127.)."""
    return is_loopback_host(urlsplit(url).hostname or "")
