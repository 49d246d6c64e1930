"""The address policy of a run: the runner's own and the one its job was accepted under, both applied.

An address is reachable only if both allow it; link-local and cloud metadata addresses never are.
The matrix below checks `AddressPolicy.allowed` (what the connect-time backend calls for every
connection and every redirect hop) for each combination, and `AddressRules.strictest` (what a job
scheduled from inside another job's run stores).
"""

from __future__ import annotations

import ipaddress

import pytest

from agentool_bridge.toolkits.config import AddressRules, ToolkitConfig
from agentool_bridge.toolkits.http import AddressNotAllowedError
from agentool_bridge.toolkits.http.addresses import AddressPolicy

LOOPBACK = AddressRules()  # a server on loopback or stdio
EXPOSED = AddressRules(exposed=True)  # on 0.0.0.0 without --http-allow
EXPOSED_2 = AddressRules(exposed=True, http_allow=("127.0.0.2",))
EXPOSED_NET = AddressRules(exposed=True, http_allow=("10.0.0.0/8", "127.0.0.0/8"))
EXPOSED_PORT = AddressRules(exposed=True, http_allow=("127.0.0.2:8080",))

ALWAYS_REFUSED = ["169.254.169.254", "169.254.10.1", "fe80::1", "::ffff:169.254.169.254", "100.100.100.200",
                  "fd00:ec2::254", "0.0.0.0", "224.0.0.1", "255.255.255.255"]
ANY_PATTERN = ("169.254.0.0/16", "fe80::/10", "0.0.0.0/0", "::/0", "100.64.0.0/10")


def policy(own: AddressRules, accepted: AddressRules | None) -> AddressPolicy:
    return AddressPolicy(own.http_allow, exposed=own.exposed).under(accepted)


def reachable(own: AddressRules, accepted: AddressRules | None, address: str, port: int = 8080) -> bool:
    try:
        policy(own, accepted).allowed(address, [ipaddress.ip_address(address)], port)
    except AddressNotAllowedError:
        return False
    return True


# (runner's own, job's stored, address, reachable)
MATRIX = [
    # A job stored before jobs kept their policy (None): the runner's own alone.
    (LOOPBACK, None, "127.0.0.1", True),
    (LOOPBACK, None, "10.1.2.3", True),
    (EXPOSED_2, None, "127.0.0.1", False),
    (EXPOSED_2, None, "127.0.0.2", True),
    # Accepted on loopback: no limit of its own.
    (LOOPBACK, LOOPBACK, "127.0.0.1", True),
    (LOOPBACK, LOOPBACK, "192.168.1.10", True),
    (EXPOSED_2, LOOPBACK, "127.0.0.1", False),
    (EXPOSED_2, LOOPBACK, "127.0.0.2", True),
    # The case of the issue: accepted by an exposed front-end, run by a loopback runner.
    (LOOPBACK, EXPOSED_2, "127.0.0.2", True),
    (LOOPBACK, EXPOSED_2, "127.0.0.1", False),
    (LOOPBACK, EXPOSED_2, "10.1.2.3", False),
    (LOOPBACK, EXPOSED_2, "::1", False),
    (LOOPBACK, EXPOSED_2, "::ffff:127.0.0.1", False),
    (LOOPBACK, EXPOSED, "127.0.0.2", False),
    (LOOPBACK, EXPOSED, "100.64.0.1", False),  # carrier-grade NAT: private too
    (LOOPBACK, EXPOSED, "fc00::1", False),
    # Both exposed: only what both patterns allow.
    (EXPOSED_NET, EXPOSED_2, "127.0.0.2", True),
    (EXPOSED_NET, EXPOSED_2, "127.0.0.1", False),
    (EXPOSED_NET, EXPOSED_2, "10.1.2.3", False),
    (EXPOSED_2, EXPOSED_NET, "10.1.2.3", False),
    (EXPOSED_2, EXPOSED_NET, "127.0.0.2", True),
    # A pattern's port counts in the stored policy too.
    (LOOPBACK, EXPOSED_PORT, "127.0.0.2", True),
    # Public addresses: every policy allows them.
    (LOOPBACK, EXPOSED, "93.184.215.14", True),
    (EXPOSED, EXPOSED_2, "2606:4700::1111", True),
]


@pytest.mark.parametrize(("own", "accepted", "address", "expected"), MATRIX)
def test_an_address_is_reachable_only_if_the_runner_and_the_job_s_stored_policy_both_allow_it(
    own: AddressRules, accepted: AddressRules | None, address: str, expected: bool
) -> None:
    assert reachable(own, accepted, address) is expected


def test_a_stored_pattern_with_a_port_does_not_allow_another_port() -> None:
    assert reachable(LOOPBACK, EXPOSED_PORT, "127.0.0.2", port=8080) is True
    assert reachable(LOOPBACK, EXPOSED_PORT, "127.0.0.2", port=8081) is False


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
@pytest.mark.parametrize("accepted", [None, LOOPBACK, AddressRules(True, ANY_PATTERN)])
def test_metadata_link_local_and_unspecified_addresses_are_refused_whatever_either_policy_allows(
    address: str, accepted: AddressRules | None
) -> None:
    own = AddressRules(True, ANY_PATTERN)
    for runner in (own, LOOPBACK):
        with pytest.raises(AddressNotAllowedError, match="which jobs may never reach"):
            policy(runner, accepted).allowed(address, [ipaddress.ip_address(address)], 80)


def test_a_metadata_host_name_is_refused_under_a_combined_policy() -> None:
    with pytest.raises(AddressNotAllowedError, match="cloud metadata host name"):
        policy(LOOPBACK, AddressRules(True, ANY_PATTERN)).check_name("metadata.google.internal")


def test_a_refusal_by_the_job_s_stored_policy_says_so_and_how_to_change_it() -> None:
    with pytest.raises(AddressNotAllowedError) as refused:
        policy(LOOPBACK, EXPOSED_2).allowed("127.0.0.1", [ipaddress.ip_address("127.0.0.1")], 8080)

    message = str(refused.value)
    assert "Refusing to connect to 127.0.0.1 port 8080" in message
    assert "the server that accepted this job" in message
    assert "update_job" in message and "--http-allow 127.0.0.1" in message


def test_a_refusal_by_the_runner_s_own_policy_names_its_flag() -> None:
    with pytest.raises(AddressNotAllowedError) as refused:
        policy(EXPOSED_2, LOOPBACK).allowed("127.0.0.1", [ipaddress.ip_address("127.0.0.1")], 8080)

    message = str(refused.value)
    assert "this server listens beyond loopback" in message
    assert "Start the server with --http-allow 127.0.0.1" in message
    assert "accepted this job" not in message


def test_of_a_host_s_addresses_only_those_both_policies_allow_are_connected_to() -> None:
    addresses = [ipaddress.ip_address(a) for a in ("127.0.0.1", "127.0.0.2", "93.184.215.14")]

    allowed = policy(LOOPBACK, EXPOSED_2).allowed("example.test", addresses, 443)

    assert [str(a) for a in allowed] == ["127.0.0.2", "93.184.215.14"]


def test_a_stored_pattern_that_does_not_parse_allows_nothing() -> None:
    stored = AddressRules(exposed=True, http_allow=("not a pattern!", "127.0.0.2"))

    assert reachable(LOOPBACK, stored, "127.0.0.2") is True
    assert reachable(LOOPBACK, stored, "127.0.0.1") is False


async def test_resolving_a_name_checks_its_addresses_against_both_policies() -> None:
    with pytest.raises(AddressNotAllowedError, match="accepted this job"):
        await policy(LOOPBACK, EXPOSED_2).resolve("localhost", 80)
    assert await policy(LOOPBACK, LOOPBACK).resolve("localhost", 80)


def test_the_toolkit_config_gives_the_rules_a_job_accepted_under_it_stores() -> None:
    config = ToolkitConfig(http_allow=("127.0.0.2", "10.0.0.0/8"), exposed=True)

    assert config.address_rules == AddressRules(True, ("127.0.0.2", "10.0.0.0/8"))
    assert AddressPolicy(config.http_allow, exposed=config.exposed).rules == config.address_rules


@pytest.mark.parametrize(
    ("one", "other", "strictest"),
    [
        (LOOPBACK, LOOPBACK, LOOPBACK),
        (LOOPBACK, EXPOSED_2, EXPOSED_2),
        (EXPOSED_2, LOOPBACK, EXPOSED_2),
        (EXPOSED, EXPOSED_2, EXPOSED),
        (EXPOSED_NET, EXPOSED_2, EXPOSED),  # no pattern in common: none kept (stricter, never looser)
        (EXPOSED_NET, AddressRules(True, ("127.0.0.0/8", "nas.local")), AddressRules(True, ("127.0.0.0/8",))),
    ],
)
def test_the_strictest_of_two_rules_allows_nothing_either_refuses(
    one: AddressRules, other: AddressRules, strictest: AddressRules
) -> None:
    combined = one.strictest(other)

    assert combined == strictest
    for address in ("127.0.0.1", "127.0.0.2", "10.1.2.3", "192.168.0.1", "93.184.215.14"):
        if reachable(LOOPBACK, combined, address):
            assert reachable(LOOPBACK, one, address) and reachable(LOOPBACK, other, address), address
