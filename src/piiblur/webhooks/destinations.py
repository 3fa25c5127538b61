"""No SSRF: webhook URLs must lead to public addresses, checked on the address actually used.

A name is resolved once per attempt, every address it resolves to must be public, and the request
is then sent to that very address (with the original Host header and TLS server name), so a DNS
answer that changes between the check and the connection cannot redirect a delivery inwards.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeDestinationError(ValueError):
    pass


@dataclass(frozen=True)
class Destination:
    """Where to connect (``connect_url`` has the checked IP) and what to call it (``host``)."""

    url: str
    connect_url: str
    host: str


def check_url_syntax(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestinationError("Webhook URL must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise UnsafeDestinationError("Webhook URL must not carry credentials")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and address not in METADATA_ADDRESSES and not address.is_multicast


def resolve(url: str, allow_private: bool) -> Destination:
    check_url_syntax(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UnsafeDestinationError(f"Webhook host {host} does not resolve ({error})") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private:
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise UnsafeDestinationError(
                f"Webhook URL resolves to a non-public address ({', '.join(sorted(set(refused)))})"
            )
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{port}"
    connect_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    return Destination(url, connect_url, host_header)
