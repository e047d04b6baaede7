"""No secret ever leaves the process: not in logs, metrics, the landing page or errors."""

from __future__ import annotations

import pytest

from exporter.logs import MASK, logger
from exporter.simulator import Fault
from tests.conftest import account_config


@pytest.mark.slow
def test_credentials_and_tokens_appear_nowhere(sim, make_exporter) -> None:
    acme = next(a for a in sim.accounts if a.name == "acme")
    globex = next(a for a in sim.accounts if a.name == "globex")
    exporter = make_exporter(
        account_config(sim, "acme"),
        account_config(sim, "globex", api_key=None, password=globex.password),
    )
    tokens: set[str] = set()
    exporter.poll()
    tokens |= set(sim._tokens)
    sim.revoke_tokens()
    sim.add_fault(Fault(kind="status", api="servers", region="DFW", status=503))
    exporter.poll()
    tokens |= set(sim._tokens)
    sim.clear_faults()
    sim.add_fault(Fault(kind="status", api="identity", status=401, account="globex"))
    sim.revoke_tokens("globex")
    exporter.poll()
    assert len(tokens) >= 4
    secrets = [acme.api_key, globex.password, *tokens]
    texts = {"log": exporter.log.getvalue()}
    for path in ("/metrics", "/", "/-/ready", "/-/healthy", "/nope"):
        texts[path] = exporter.get(path).text
    assert "poll failed" in texts["log"]  # the failures above were logged
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"


def test_log_lines_mask_a_secret_even_if_a_message_carried_it(sim, make_exporter) -> None:
    """The formatter's last line of defence: a configured secret is replaced wherever it is."""
    exporter = make_exporter(account_config(sim, "initech"))
    api_key = exporter.config.accounts[0].api_key
    logger.warning("oops", extra={"detail": f"key={api_key}"})
    line = exporter.log.getvalue().splitlines()[-1]
    assert api_key not in line
    assert MASK in line
