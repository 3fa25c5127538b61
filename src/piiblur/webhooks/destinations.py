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


NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: IPv4 in the last 32 bits
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a site's own translators
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d, still routed by some stacks


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to through a transition mechanism (mapped, compatible,
    NAT64, 6to4): a translator or relay on the way would deliver to it."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_WELL_KNOWN or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally reachable, not a cloud metadata service, not multicast; for IPv6, neither the
    IPv4 address it embeds (an IPv6 literal must not smuggle loopback or a private network in)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL or address.teredo is not None:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return inner not in (ipaddress.IPv4Address(0),) and is_public(inner)
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
