"""Where rollcall may send a webhook: one policy, used when a URL is given or changed
(`check_url`) and again at every connection (`deliverer.GuardedBackend`).

A receiver is on the public internet; rollcall must not be a way into the network it runs on.
So an address is refused when it is loopback, private, shared (carrier-grade NAT), link-local,
multicast, reserved, unspecified, or set aside for benchmarks or documentation, and an IPv6
address that carries an IPv4 one (IPv4-mapped, -compatible and -translated, the NAT64 prefixes,
6to4, Teredo) is judged by the IPv4 address inside it as well: on an IPv6-only subnet with NAT64,
`64:ff9b::a00:1` reaches 10.0.0.1. The ranges are written out here rather than taken from
`ipaddress.is_global` alone, whose lists differ between Python versions (3.11 calls multicast,
NAT64 and 6to4 "global").
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = [
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata services live there)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved for IETF protocols"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved (6to4 relays)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
]
_V6 = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "reserved (discard)"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved (segment routing)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
]
_REFUSED = [(ipaddress.ip_network(network), reason) for network, reason in _V4 + _V6]

# IPv6 forms whose last 32 bits are an IPv4 address a packet ends up at.
_LAST_32_BITS = [
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, the well-known prefix
]


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (none for a plain one)."""
    found = [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) for network in _LAST_32_BITS if address in network]
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    return found


def refusal(address: str | IPAddress) -> str | None:
    """Why a webhook may not be sent to this address (None: it may)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    for network, reason in _REFUSED:
        if ip.version == network.version and ip in network:
            return reason
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in embedded_ipv4(ip):
            inside = refusal(inner)
            if inside:
                return f"an IPv6 form of {inner}, which is {inside}"
    if not ip.is_global:
        return "not on the public internet"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal is its own)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found})


class UnsafeURL(ValueError):
    """A URL rollcall must not send to; the message says why."""


def check_url(url: str, *, allow_http: bool, allow_private: bool) -> str:
    """The URL, if rollcall may send webhooks to it; `UnsafeURL` saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeURL("The URL must start with https:// (plain http:// only with ROLLCALL_WEBHOOKS_ALLOW_HTTP).")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("The URL must not carry a user or password.")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeURL("The URL's port is not a number from 1 to 65535.") from None
    if port == 0:
        raise UnsafeURL("The URL's port is not a number from 1 to 65535.")
    if allow_private:
        return url
    addresses = resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        raise UnsafeURL(f"{parts.hostname} does not resolve to an address.")
    for address in addresses:
        reason = refusal(address)
        if reason:
            raise UnsafeURL(
                f"{parts.hostname} resolves to {address}, which is {reason}: not allowed without "
                "ROLLCALL_WEBHOOKS_ALLOW_PRIVATE."
            )
    return url
