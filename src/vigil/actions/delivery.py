"""The delivery worker: claims due actions, sends them, records what happened.

Guarantees (see the README's "Webhooks" section):

- at least once: a row leaves the outbox only as delivered, dead or cancelled. Claiming marks
  it ``in_flight`` with a lease (``next_attempt_at`` = lease end); a worker that dies mid-send
  leaves it to be claimed again when the lease runs out, so the receiver may see an
  idempotency key twice and must drop the second;
- no two live workers send one action at once: claims use ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL (SQLite has a single writer), a worker stops sending before its lease could run
  out, and an outcome is written only while the claim is still the worker's (same lease end and
  attempt number), so a late answer cannot overwrite a newer claim.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from vigil.actions.banking import add_to_bank
from vigil.actions.kinds import CLAIMABLE
from vigil.actions.outbox import work_available
from vigil.actions.signing import sign
from vigil.actions.urls import UnresolvableHost, WebhookUrlRefused, check_url
from vigil.config import Settings
from vigil.hashing import BankError, BankService
from vigil.logs import get_logger
from vigil.store import Database
from vigil.store.models import Action, ActionAttempt, Alert, Webhook, utcnow

log = get_logger(__name__)
Clock = Callable[[], datetime]
#: Answers that say "not now" rather than "never": retried like server errors.
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str
    secret: str
    enabled: bool


@dataclass(frozen=True)
class Claim:
    """A claimed action. ``attempt`` and ``lease_until`` identify the claim: only the worker
    holding both may record its outcome."""

    id: int
    kind: str
    idempotency_key: str
    alert_id: int | None
    decision_id: int | None
    payload: dict[str, Any]
    automatic: bool
    created_at: datetime
    attempt: int
    lease_until: datetime
    receiver: Receiver | None

    def body(self) -> bytes:
        """The JSON sent: the same bytes on every attempt."""
        document = {
            "action_id": self.id,
            "kind": self.kind,
            "idempotency_key": self.idempotency_key,
            "alert_id": self.alert_id,
            "decision_id": self.decision_id,
            "automatic": self.automatic,
            "created_at": self.created_at.isoformat(),
            "payload": self.payload,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    result: Literal["delivered", "retry", "dead"]
    error: str = ""
    status_code: int | None = None
    duration_ms: float = 0.0
    #: Seconds the receiver asked us to wait (Retry-After), if it did.
    retry_after: float | None = None


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**(attempt-1)``
    (capped), so receivers coming back up are not hit by every sender in the same second."""
    delay = min(cap, base * 2.0 ** min(attempt - 1, 32))
    return delay * random.uniform(0.5, 1.0)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: our own backoff applies


def classify(response: httpx.Response, duration_ms: float) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome("delivered", status_code=code, duration_ms=duration_ms)
    error = f"HTTP {code}"
    if 400 <= code < 500 and code not in _RETRYABLE_CLIENT_ERRORS:
        return Outcome("dead", f"{error}: the receiver refused it", code, duration_ms)
    if 300 <= code < 400:
        return Outcome("dead", f"{error}: redirects are not followed", code, duration_ms)
    return Outcome("retry", error, code, duration_ms, _retry_after(response))


class OutboxWorker:
    """Delivers actions from the outbox. ``run_once`` does one batch (for tests and tools);
    ``start`` runs ``threads`` loops in the background until ``stop``."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        banks: BankService | None = None,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self._send_budget = timedelta(
            seconds=settings.actions_connect_timeout + settings.actions_request_timeout
        )
        if timedelta(seconds=settings.actions_lease_seconds) <= self._send_budget:
            raise ValueError("actions_lease_seconds must exceed the connect + request timeouts")
        self.db = db
        self.settings = settings
        self.banks = banks or BankService(db)
        self.clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(
                settings.actions_request_timeout, connect=settings.actions_connect_timeout
            ),
            follow_redirects=False,
            trust_env=False,
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- one batch ------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[Claim]:
        """Mark up to ``limit`` due actions in flight for this worker and return them."""
        now = self.clock()
        lease_until = now + timedelta(seconds=self.settings.actions_lease_seconds)
        due = (
            select(Action.id)
            .where(Action.status.in_(CLAIMABLE), Action.next_attempt_at <= now)
            .order_by(Action.next_attempt_at)
            .limit(limit or self.settings.actions_batch_size)
            .with_for_update(skip_locked=True)
        )
        with self.db.session() as session:
            rows = session.execute(
                update(Action)
                .where(Action.id.in_(due.scalar_subquery()))
                .values(
                    status="in_flight", attempts=Action.attempts + 1, next_attempt_at=lease_until
                )
                .returning(
                    Action.id,
                    Action.kind,
                    Action.idempotency_key,
                    Action.alert_id,
                    Action.decision_id,
                    Action.payload,
                    Action.automatic,
                    Action.created_at,
                    Action.attempts,
                    Action.webhook_id,
                ),
                execution_options={"synchronize_session": False},
            ).all()
            receivers = _receivers(session, {row.webhook_id for row in rows})
        claims = [
            Claim(
                id=row.id,
                kind=row.kind,
                idempotency_key=row.idempotency_key,
                alert_id=row.alert_id,
                decision_id=row.decision_id,
                payload=row.payload,
                automatic=row.automatic,
                created_at=row.created_at,
                attempt=row.attempts,
                lease_until=lease_until,
                receiver=receivers.get(row.webhook_id),
            )
            for row in rows
        ]
        return sorted(claims, key=lambda c: c.id)

    def execute(self, claim: Claim) -> Outcome:
        """Carry the action out: a signed POST, or the local handler for ``add_to_bank``."""
        if claim.kind == "add_to_bank":
            return self._bank(claim)
        return self._post(claim)

    def record(self, claim: Claim, outcome: Outcome) -> bool:
        """Write the attempt and the action's new state; False if the claim was lost (the lease
        ran out and another worker took it, or the action was cancelled meanwhile)."""
        now = self.clock()
        with self.db.session() as session:
            session.add(
                ActionAttempt(
                    action_id=claim.id,
                    at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            result = session.execute(
                update(Action)
                .where(
                    Action.id == claim.id,
                    Action.status == "in_flight",
                    Action.attempts == claim.attempt,
                    Action.next_attempt_at == claim.lease_until,
                )
                .values(**self._next_state(claim, outcome, now))
                .execution_options(synchronize_session=False)
            )
        assert isinstance(result, CursorResult)
        kept = result.rowcount == 1
        log.info(
            "action.attempt",
            action_id=claim.id,
            kind=claim.kind,
            attempt=claim.attempt,
            result=outcome.result,
            status_code=outcome.status_code,
            error=outcome.error,
            claim_kept=kept,
        )
        return kept

    def unclaim(self, claims: list[Claim]) -> None:
        """Hand back claims not yet sent (on stop, or when a lease is too short to send them),
        as due now and with their attempt uncounted."""
        with self.db.session() as session:
            for claim in claims:
                session.execute(
                    update(Action)
                    .where(
                        Action.id == claim.id,
                        Action.status == "in_flight",
                        Action.attempts == claim.attempt,
                        Action.next_attempt_at == claim.lease_until,
                    )
                    .values(
                        status="pending", attempts=claim.attempt - 1, next_attempt_at=self.clock()
                    )
                    .execution_options(synchronize_session=False)
                )

    def run_once(self) -> int:
        """Claim one batch and work through it; returns how many actions were attempted."""
        claims = self.claim()
        for done, claim in enumerate(claims):
            if self._stopping.is_set() or not self._time_to_send(claim):
                self.unclaim(claims[done:])
                return done
            self.record(claim, self.execute(claim))
        return len(claims)

    def _time_to_send(self, claim: Claim) -> bool:
        # A send must end before the lease does, or another worker could send it too.
        return self.clock() + self._send_budget <= claim.lease_until

    # --- background threads ---------------------------------------------------------------

    def start(self, threads: int | None = None) -> None:
        self._stopping.clear()
        for number in range(threads or self.settings.actions_worker_threads):
            thread = threading.Thread(target=self._loop, name=f"vigil-outbox-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("outbox.started", threads=len(self._threads))

    def stop(self, timeout: float | None = None) -> None:
        """Finish the sends on the wire, hand back the rest of each batch, and return."""
        self._stopping.set()
        work_available.set()  # wake idle loops now rather than at their next poll
        for thread in self._threads:
            thread.join(timeout)
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        log.info("outbox.stopped", still_running=len(self._threads))

    def close(self) -> None:
        self.stop()
        self._client.close()

    def __enter__(self) -> OutboxWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:  # the database may be down: keep the thread, try again
                log.warning("outbox.batch_failed", error=str(exc))
                worked = 0
            if not worked:
                work_available.wait(self.settings.actions_poll_seconds)
                work_available.clear()

    # --- outcomes -------------------------------------------------------------------------

    def _next_state(self, claim: Claim, outcome: Outcome, now: datetime) -> dict[str, Any]:
        if outcome.result == "delivered":
            return {"status": "delivered", "delivered_at": now, "last_error": ""}
        if outcome.result == "dead":
            return {"status": "dead", "last_error": outcome.error}
        if claim.attempt >= self.settings.actions_max_attempts:
            return {
                "status": "dead",
                "last_error": f"gave up after {claim.attempt} attempts: {outcome.error}",
            }
        delay = backoff_seconds(
            claim.attempt,
            self.settings.actions_backoff_base_seconds,
            self.settings.actions_backoff_max_seconds,
        )
        if outcome.retry_after is not None:
            delay = min(max(delay, outcome.retry_after), self.settings.actions_backoff_max_seconds)
        return {
            "status": "pending",
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": outcome.error,
        }

    def _post(self, claim: Claim) -> Outcome:
        receiver = claim.receiver
        if receiver is None:
            return Outcome("dead", "the webhook was deleted")
        if not receiver.enabled:
            return Outcome("dead", f"webhook {receiver.name!r} is disabled")
        try:
            target = check_url(receiver.url, self.settings.url_fetch_allow)
        except UnresolvableHost as exc:
            return Outcome("retry", str(exc))
        except WebhookUrlRefused as exc:
            return Outcome("dead", str(exc))
        body = claim.body()
        timestamp = int(time.time())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": "vigil-webhooks/1",
            "X-Vigil-Action": claim.kind,
            "X-Vigil-Idempotency-Key": claim.idempotency_key,
            "X-Vigil-Timestamp": str(timestamp),
            "X-Vigil-Signature": sign(receiver.secret, timestamp, body),
            "X-Vigil-Attempt": str(claim.attempt),
        }
        request = self._client.build_request(
            "POST",
            target.url,
            content=body,
            headers=headers,
            extensions={"sni_hostname": target.sni_hostname},
        )
        started = time.perf_counter()
        try:
            # Streamed and closed unread: only the status matters, and a receiver that drips
            # out a body must not hold the send past its lease.
            response = self._client.send(request, stream=True)
            response.close()
        except httpx.TimeoutException as exc:
            return Outcome("retry", f"timed out: {type(exc).__name__}", None, _ms(started))
        except httpx.HTTPError as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}", None, _ms(started))
        return classify(response, _ms(started))

    def _bank(self, claim: Claim) -> Outcome:
        started = time.perf_counter()
        with self.db.session() as session:
            alert = session.get(Alert, claim.alert_id) if claim.alert_id is not None else None
            if alert is None:
                return Outcome("dead", "the alert no longer exists")
            content_ref, signals = alert.content_ref, list(alert.signals)
        try:
            add_to_bank(
                self.banks,
                bank=str(claim.payload["bank"]),
                alert_id=alert.id,
                content_ref=content_ref,
                signals=signals,
                labels=[str(label) for label in claim.payload.get("labels", [])],
            )
        except (BankError, ValueError, KeyError) as exc:
            # A missing bank or an alert without signals will not fix itself by waiting.
            return Outcome("dead", f"cannot bank: {exc}", None, _ms(started))
        return Outcome("delivered", "", None, _ms(started))


def _receivers(session: Session, ids: set[int | None]) -> dict[int | None, Receiver]:
    webhooks = session.scalars(select(Webhook).where(Webhook.id.in_(ids - {None})))
    return {w.id: Receiver(w.name, w.url, w.secret, w.enabled) for w in webhooks}


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
