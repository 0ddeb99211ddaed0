"""The network guard's address policy over a table of addresses (issue 15, finding 1)."""

from __future__ import annotations

import pytest

from timmybot.netguard.addresses import embedded_ipv4, is_public, parse_address, refusal_reason

REFUSED: list[tuple[str, str]] = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "instance metadata"),
    ("169.254.170.2", "ECS task metadata"),
    ("169.254.1.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("fd00:ec2::254", "instance metadata"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    # IPv6 forms that carry a refused IPv4 address
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "instance metadata"),
    ("::ffff:a9fe:a9fe", "instance metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::169.254.169.254", "IPv4-compatible"),
    ("2002:a9fe:a9fe::1", "instance metadata"),  # 6to4 of 169.254.169.254
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "instance metadata"),  # NAT64 of 169.254.169.254
    ("64:ff9b::10.0.0.1", "private"),
    ("64:ff9b:1:a9fe:a9:fe00::", "instance metadata"),  # RFC 8215 local-use NAT64 (/48 layout)
    ("[::1]", "loopback"),
]
PUBLIC = [
    "8.8.8.8",
    "142.250.185.78",
    "1.1.1.1",
    "2a00:1450:4001:82a::200e",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:0808:0808::1",
]


@pytest.mark.parametrize(("address", "what"), REFUSED, ids=[a for a, _ in REFUSED])
def test_refused_addresses_name_what_they_are(address: str, what: str) -> None:
    reason = refusal_reason(address)
    assert reason is not None, address
    assert what in reason
    assert not is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(address) is None
    assert is_public(address)


@pytest.mark.parametrize("text", ["", "localhost", "169.254.169.254.nip.io", "0x7f000001", "2130706433", "1.2.3"])
def test_what_is_not_an_ip_literal_is_refused_as_such(text: str) -> None:
    # Names are resolved by the guard first; the policy itself only ever judges addresses.
    assert parse_address(text) is None
    assert refusal_reason(text) == "not an IP address"


def test_embedded_ipv4_reads_every_form() -> None:
    forms = ["::ffff:169.254.169.254", "2002:a9fe:a9fe::", "64:ff9b::169.254.169.254", "64:ff9b:1:a9fe:a9:fe00::"]
    for form in forms:
        ip = parse_address(form)
        assert ip is not None and ip.version == 6
        assert str(embedded_ipv4(ip)) == "169.254.169.254", form  # type: ignore[arg-type]
