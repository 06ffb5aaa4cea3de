"""The chain when a method itself breaks: the login fails with a reason, it is not cut."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferryd.auth.chain import LoginScope, authenticate
from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.config.loader import load_configuration
from ferryd.events.event import ComponentRef, Peer

WriteIni = Callable[..., Path]


class _Broken:
    """A running method whose verification raises, as a dead hashing worker pool did."""

    ref = ComponentRef(uuid="main", type="application", name="main", kind="authentications")

    async def authenticate(self, credentials: Credentials) -> Decision:
        raise RuntimeError("the hashing pool is gone")


async def test_a_method_that_raises_fails_the_login_with_event_20256(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("\n[authentications/main]\ntype = application\n")
    configuration = load_configuration(config_dir)
    emitted: list[tuple[str, dict[str, Any]]] = []
    scope = LoginScope(
        configuration=configuration,
        methods=["main"],
        policy=None,
        find=lambda key: _Broken() if key == ("authentications", "main") else None,  # type: ignore[arg-type,return-value]
        guard=None,
        emit=lambda event_id, **data: emitted.append((event_id, data)),
    )
    credentials = Credentials("password", "alice", Peer("192.0.2.7", 50000), password="x")

    result = await authenticate(scope, credentials)

    assert result.decision.outcome is Outcome.FAILED
    reason = "application method failed: RuntimeError('the hashing pool is gone')"
    assert result.decision.reason == reason
    assert [(event_id, data["reason"]) for event_id, data in emitted if event_id == "20256"] == [
        ("20256", reason)
    ]
