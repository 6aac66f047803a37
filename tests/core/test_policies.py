"""The policies that need no process: what a log line may show, and where a webhook may go."""

from __future__ import annotations

import re

import pytest

from rollcall.logs import scrub
from rollcall.webhooks.addresses import UnsafeURL, check_url, refusal

MEMBER = "+15559876543"


def test_the_last_step_of_every_line_removes_numbers_and_secrets() -> None:
    assert scrub(f"mobile {MEMBER} or (555) 987-6543 or +44 20 7946 0958") == (
        "mobile [number] or [number] or [number]"
    )
    kept = "2026-12-06T13:42:09.770284Z 2017-11-07 18:54:10.829655 10.0.0.1 id 06549d66fb13f5af6eb03f9a4d710848"
    assert scrub(kept) == kept  # times, addresses and hex ids are no numbers to hide
    assert scrub("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw and rMBiX0cJG3yOLEyzw2gjWZXNGT6bEJ0Z8R3bCR9Gmmc") == (
        "[secret] and [secret]"
    )


# -- one address policy for webhooks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("64:ff9b::808:808", None),  # NAT64 of a public address
        ("2002:808:808::1", None),  # 6to4 of a public address
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.9", "private"),
        ("100.64.0.1", "shared"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "benchmarking"),
        ("2001:2::1", "benchmarking"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.1", "documentation"),
        ("2001:db8::1", "documentation"),
        ("fc00::1", "private"),
        ("fec0::1", "site-local"),
        ("::ffff:127.0.0.1", "127.0.0.1, which is loopback"),  # IPv4-mapped
        ("::ffff:0:a00:1", "10.0.0.1, which is private"),  # IPv4-translated
        ("::a00:1", "10.0.0.1, which is private"),  # IPv4-compatible
        ("64:ff9b::a00:1", "10.0.0.1, which is private"),  # NAT64, the well-known prefix
        ("64:ff9b:1::a00:1", "NAT64"),  # local-use NAT64
        ("2002:a00:1::", "10.0.0.1, which is private"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1, which is private"),  # Teredo
    ],
)
def test_one_policy_decides_which_addresses_a_webhook_may_reach(address: str, reason: str | None) -> None:
    found = refusal(address)
    assert (found is None) if reason is None else (found is not None and reason in found), found


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://93.184.216.34:0/hooks", "port"),
        ("https://93.184.216.34:70000/hooks", "port"),
        ("https://93.184.216.34/" + "a" * 2000, "longer than 2000"),
        ("https://[64:ff9b::a00:1]/hooks", "10.0.0.1, which is private"),
        ("https://[::ffff:169.254.169.254]/latest", "link-local"),
    ],
)
def test_urls_are_refused_by_the_same_policy(url: str, problem: str) -> None:
    with pytest.raises(UnsafeURL, match=re.escape(problem)):
        check_url(url, allow_http=False, allow_private=False)
    assert check_url("https://93.184.216.34/hooks", allow_http=False, allow_private=False)
