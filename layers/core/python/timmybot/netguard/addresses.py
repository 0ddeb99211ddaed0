"""The address policy of the network guard: which IP addresses an outbound connection may reach.

One function, ``refusal_reason``, answers for any IPv4 or IPv6 address: ``None`` when the address
is public, else a short reason. IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
6to4 ``2002::/16``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``) are judged by the IPv4 address
they carry; IPv4-compatible ``::a.b.c.d`` and Teredo are refused outright (nothing legitimate uses
them, and they would smuggle an IPv4 address past an IPv6-only check).

Stdlib only (``ipaddress``), no I/O.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Named networks, most specific first, so the reason says what the address is.
_V4_NETWORKS: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("169.254.169.254/32", "the instance metadata endpoint"),
        ("169.254.170.2/32", "the ECS task metadata endpoint"),
        ("0.0.0.0/8", "an unspecified address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("169.254.0.0/16", "a link-local address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("192.0.0.0/24", "a reserved address"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_V6_NETWORKS: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("fd00:ec2::254/128", "the instance metadata endpoint"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("fc00::/7", "a unique-local address"),
        ("ff00::/8", "a multicast address"),
        ("100::/64", "a discard-only address"),
        ("2001:db8::/32", "a documentation address"),
        ("2001::/32", "a Teredo address"),
        ("::/96", "an IPv4-compatible address"),
    )
)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and an IPv6 zone id allowed), else None."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 IPv6 address stands for."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64[0]:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64[1]:
        # RFC 6052 /48: the IPv4 address sits in bits 48..63 and 72..87 (bits 64..71 are zero).
        value = int(address)
        high = (value >> 64) & 0xFFFF
        low = (value >> 40) & 0xFFFF
        return ipaddress.IPv4Address((high << 16) | low)
    return None


def refusal_reason(address: IPAddress | str) -> str | None:
    """Why the guard refuses ``address`` (e.g. "a loopback address"), or None when it is public."""
    ip = parse_address(address) if isinstance(address, str) else address
    if ip is None:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        inner = embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            return None if reason is None else f"{reason} (in an IPv6 form)"
        for network, reason in _V6_NETWORKS:
            if ip in network:
                return reason
    else:
        for v4, reason in _V4_NETWORKS:
            if ip in v4:
                return reason
    # Whatever the named table missed, the stdlib's registry of special-purpose blocks catches.
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved or ip.is_unspecified:
        return "a reserved address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or not ip.is_global:
        return "a private or special-purpose address"
    return None


def is_public(address: IPAddress | str) -> bool:
    """True when the guard lets a connection reach ``address``."""
    return refusal_reason(address) is None
