"""Fixtures for the action tests: a real receiver on localhost, a worker with a clock the test
moves, and alerts/decisions to act on. It holds no tests itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_network
from typing import Any

import pytest
from sqlalchemy import select

from vigil import actions
from vigil.actions import webhooks
from vigil.actions.delivery import OutboxWorker
from vigil.actions.receiver import WebhookReceiver
from vigil.api.settings import ApiSettings
from vigil.config import Settings
from vigil.store import Database
from vigil.store.models import Action, Alert, Decision, UserAccount, utcnow

SECRET = "whsec_test-secret-that-is-long-enough"
SIGNALS = [
    {"signal_type": "sha256", "signal": "ab" * 32, "quality": None, "variant": None},
    {"signal_type": "md5", "signal": "cd" * 16, "quality": None, "variant": None},
]


class Clock:
    """The real time, moved forward when a test says so: backoff and leases run out without
    the test sleeping through them."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Outbox:
    db: Database
    settings: ApiSettings
    clock: Clock
    receiver: WebhookReceiver

    def worker(self, **overrides: Any) -> OutboxWorker:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        return OutboxWorker(self.db, settings, clock=self.clock)

    def webhook(self, name: str = "platform", kinds: tuple[str, ...] = ("takedown",)) -> int:
        with self.db.session() as session:
            info, _ = webhooks.create(
                session,
                "user:admin",
                name=name,
                url=self.receiver.url,
                kinds=kinds,
                allow=self.settings.url_fetch_allow,
                secret=SECRET,
            )
        return info.id

    def decided_alert(self, *, approver: bool = False) -> tuple[int, int]:
        """An alert and a confirming decision (approved by a second person if asked)."""
        with self.db.session() as session:
            alert = Alert(
                dedupe_key=uuid.uuid4().hex,
                source="hashing",
                content_kind="image",
                content_ref="upload/123.jpg",
                platform="example",
                url="https://example.org/p/123",
                signals=SIGNALS,
                matches=[],
            )
            session.add(alert)
            session.flush()
            decision = Decision(alert_id=alert.id, outcome="confirm", reason="matches a bank")
            if approver:
                user = UserAccount(username=f"approver-{uuid.uuid4().hex[:6]}", roles=[])
                session.add(user)
                session.flush()
                decision.approved_by = user.id
            session.add(decision)
            session.flush()
            return alert.id, decision.id

    def enqueue(self, kind: str = "takedown", **kwargs: Any) -> list[int]:
        alert_id, decision_id = self.decided_alert()
        with self.db.session() as session:
            rows = actions.enqueue(
                session,
                kind,
                alert_id=alert_id,
                decision_id=decision_id,
                payload=kwargs.pop("payload", {"reason": "test"}),
                **kwargs,
            )
            return [row.id for row in rows]

    def action(self, action_id: int) -> Action:
        with self.db.session() as session:
            action = session.get(Action, action_id)
            assert action is not None
            return action

    def statuses(self) -> dict[int, str]:
        with self.db.session() as session:
            return {row.id: row.status for row in session.execute(select(Action.id, Action.status))}


def outbox_settings(settings: Settings) -> ApiSettings:
    return ApiSettings.of(settings).model_copy(
        update={
            "url_fetch_allow": [ip_network("127.0.0.0/8")],
            "actions_backoff_base_seconds": 1.0,
            "actions_backoff_max_seconds": 60.0,
            "actions_max_attempts": 4,
            "actions_connect_timeout": 2.0,
            "actions_request_timeout": 5.0,
        }
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(SECRET).start()
    yield running
    running.stop()


@pytest.fixture
def outbox(settings: Settings, db: Database, receiver: WebhookReceiver) -> Outbox:
    return Outbox(db, outbox_settings(settings), Clock(), receiver)
