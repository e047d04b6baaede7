"""Metadata -> states: normalisation and the ready rule."""

from __future__ import annotations

import pytest

from exporter.model import (
    FIRST,
    UNKNOWN,
    Server,
    normalise_automation_status,
    normalise_managed_status,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("DEPLOYED", "DEPLOYED"),
        ("deployed", "DEPLOYED"),
        ("  Deploying \n", "DEPLOYING"),
        ("FAILED", "FAILED"),
        ("Unprocessable", "UNPROCESSABLE"),
        ("DEPLOYED!", UNKNOWN),
        ("", UNKNOWN),
        (42, UNKNOWN),
        (None, UNKNOWN),
    ],
)
def test_automation_status(raw: object, status: str) -> None:
    assert normalise_automation_status(raw) == status


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Complete", "Complete"),
        ("COMPLETE", "Complete"),
        ("in progress", "In Progress"),
        ("In  Progress", "In Progress"),
        (" Build Error ", "Build Error"),
        ("authentication error", "Authentication Error"),
        ("Pending", "Pending"),
        ("Queued", UNKNOWN),
        (["Complete"], UNKNOWN),
    ],
)
def test_managed_status(raw: object, status: str) -> None:
    assert normalise_managed_status(raw) == status


def doc(**metadata: object) -> dict[str, object]:
    return {
        "id": "5bccf43e-35fa-4d65-9390-2b2d6b23ec89",
        "name": "web-01",
        "created": "2013-07-23T15:44:56Z",
        "metadata": metadata,
    }


def test_from_api_reads_every_key() -> None:
    server = Server.from_api(
        doc(
            rackconnect_automation_status="UNPROCESSABLE",
            rackconnect_automation_feature_configure_network_stack="ENABLED",
            rackconnect_automation_feature_manage_software_firewall="DISABLED",
            rackconnect_automation_feature_provison_public_ip="enabled",
            rax_service_level_automation="Pending",
            rackconnect_unprocessable_reason="x" * 300,
        )
    )
    assert server.id == "5bccf43e-35fa-4d65-9390-2b2d6b23ec89"
    assert server.name == "web-01"
    assert server.created == 1374594296.0
    assert server.automation_status == "UNPROCESSABLE"
    assert server.features == (
        ("configure_network_stack", True),
        ("manage_software_firewall", False),
        ("provision_public_ip", True),
    )
    assert server.managed_status == "Pending"
    assert server.unprocessable_reason == "x" * 200


def test_feature_key_with_the_correct_spelling_is_read_too() -> None:
    server = Server.from_api(doc(rackconnect_automation_feature_provision_public_ip="ENABLED"))
    assert server.features == (("provision_public_ip", True),)


def test_odd_but_legal_documents() -> None:
    server = Server.from_api({"id": 1234, "name": None, "image": "", "metadata": None})
    assert (server.id, server.name, server.created) == ("1234", "", None)
    assert server.automation_status is None
    assert server.managed_status is None
    assert server.features == ()
    first = Server.from_api({"id": 7, "created": "2013-07-23T15:44:56Z"}, FIRST)
    assert first.generation == FIRST
    assert first.created is None  # contract: next generation only


@pytest.mark.parametrize("bad_id", [None, "", True, 1.5, ["x"]])
def test_a_server_needs_an_id(bad_id: object) -> None:
    with pytest.raises(ValueError, match="usable id"):
        Server.from_api({"id": bad_id, "name": "x"})


@pytest.mark.parametrize(
    ("metadata", "rackconnect", "managed", "ready"),
    [
        ({}, False, False, True),  # plain cloud account: nothing to wait for
        ({}, True, False, False),  # RackConnect account, automation not started
        ({}, False, True, False),  # Managed account, automation not started
        ({"rackconnect_automation_status": "DEPLOYING"}, True, False, False),
        ({"rackconnect_automation_status": "DEPLOYED"}, True, False, True),
        ({"rackconnect_automation_status": "FAILED"}, True, False, False),
        ({"rackconnect_automation_status": "UNPROCESSABLE"}, True, False, False),
        ({"rackconnect_automation_status": "DEPLOYING"}, False, False, False),  # key wins
        ({"rackconnect_automation_status": "DEPLOYED"}, True, True, False),  # Managed pending
        (
            {
                "rackconnect_automation_status": "DEPLOYED",
                "rax_service_level_automation": "In Progress",
            },
            True,
            True,
            False,
        ),
        (
            {
                "rackconnect_automation_status": "DEPLOYED",
                "rax_service_level_automation": "Complete",
            },
            True,
            True,
            True,
        ),
        ({"rax_service_level_automation": "Complete"}, False, True, True),
        ({"rax_service_level_automation": "Build Error"}, False, True, False),
    ],
)
def test_ready_rule(metadata: dict, rackconnect: bool, managed: bool, ready: bool) -> None:
    assert Server.from_api(doc(**metadata)).ready(rackconnect, managed) is ready


def test_failed() -> None:
    assert Server.from_api(doc(rackconnect_automation_status="FAILED")).failed()
    assert Server.from_api(doc(rax_service_level_automation="Authentication Error")).failed()
    assert not Server.from_api(doc(rackconnect_automation_status="DEPLOYING")).failed()


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2015-06-05T16:24:57.637Z", 1433521497.637),
        ("2012-06-05T11:26:53.000-05:00", 1338913613.0),
        ("2013-07-23T15:44:56Z", 1374594296.0),
        ("2013-07-23T15:44:56", 1374594296.0),  # no zone: UTC
        ("yesterday", None),
        ("", None),
        (12, None),
    ],
)
def test_parse_timestamp(text: object, epoch: float | None) -> None:
    assert parse_timestamp(text) == epoch
