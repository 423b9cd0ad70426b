"""The outbox and its delivery worker against a real receiver on localhost, on SQLite and
PostgreSQL: signatures, retries, dead letters, crashes and restarts."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from test_actions_support import SECRET, Outbox
from vigil import actions
from vigil.actions import webhooks
from vigil.actions.delivery import Claim, backoff_seconds
from vigil.actions.outbox import NO_RECEIVER
from vigil.actions.signing import sign, verify_signature
from vigil.store.models import Action, ActionAttempt

pytest_plugins = ["test_actions_support"]


def test_signature_verifies_only_the_exact_body_secret_and_a_fresh_timestamp() -> None:
    body = b'{"kind":"takedown"}'
    now = int(time.time())
    header = sign(SECRET, now, body)
    assert header.startswith("sha256=")
    assert verify_signature(SECRET, str(now), body, header)
    assert not verify_signature(SECRET, str(now), body + b" ", header)
    assert not verify_signature("another-secret-entirely-xx", str(now), body, header)
    assert not verify_signature(SECRET, str(now + 1), body, header)
    assert not verify_signature(SECRET, "not-a-number", body, header)
    stale = now - 3600
    assert not verify_signature(SECRET, stale, body, sign(SECRET, stale, body))
    assert verify_signature(SECRET, stale, body, sign(SECRET, stale, body), now=stale + 10)


def test_actions_exist_only_if_the_transaction_commits(outbox: Outbox) -> None:
    outbox.webhook()
    alert_id, decision_id = outbox.decided_alert()
    with pytest.raises(RuntimeError), outbox.db.session() as session:
        actions.enqueue(session, "takedown", alert_id=alert_id, decision_id=decision_id, payload={})
        raise RuntimeError("the decision failed after its action was queued")
    assert outbox.statuses() == {}


def test_one_row_per_subscribed_enabled_webhook_each_with_its_own_key(outbox: Outbox) -> None:
    first = outbox.webhook("platform-a", ("takedown", "stream_cut"))
    second = outbox.webhook("platform-b", ("takedown",))
    outbox.webhook("police-only", ("police_referral",))
    disabled = outbox.webhook("platform-c", ("takedown",))
    with outbox.db.session() as session:
        webhooks.update(session, "user:admin", disabled, allow=[], enabled=False)
    ids = outbox.enqueue("takedown")
    rows = [outbox.action(action_id) for action_id in ids]
    assert sorted(row.webhook_id or 0 for row in rows) == sorted([first, second])
    assert len({row.idempotency_key for row in rows}) == 2
    assert {row.status for row in rows} == {"pending"}


def test_delivery_is_signed_and_recorded(outbox: Outbox) -> None:
    outbox.webhook()
    (action_id,) = outbox.enqueue("takedown", payload={"url": "https://example.org/p/1"})
    with outbox.worker() as worker:
        assert worker.run_once() == 1
    action = outbox.action(action_id)
    assert action.status == "delivered"
    assert outbox.receiver.bad_signatures == 0
    delivery = outbox.receiver.deliveries[action.idempotency_key]
    assert delivery.action == "takedown"
    assert delivery.body["action_id"] == action_id
    assert delivery.body["payload"] == {"url": "https://example.org/p/1"}
    with outbox.db.session() as session:
        attempts = actions.outbox.attempts(session, action_id)
    assert [a.status_code for a in attempts] == [200]


def test_a_receiver_restart_loses_nothing(outbox: Outbox) -> None:
    outbox.webhook()
    outbox.receiver.stop()
    ids = outbox.enqueue("takedown") + outbox.enqueue("takedown")
    with outbox.worker() as worker:
        assert worker.run_once() == 2
        assert set(outbox.statuses().values()) == {"pending"}
        assert "ConnectError" in outbox.action(ids[0]).last_error
        assert worker.run_once() == 0  # backing off: not due yet
        outbox.receiver.start()
        outbox.clock.advance(60)
        assert worker.run_once() == 2
    assert set(outbox.statuses().values()) == {"delivered"}
    keys = {outbox.action(action_id).idempotency_key for action_id in ids}
    assert set(outbox.receiver.deliveries) == keys
    assert outbox.receiver.duplicates == 0


def test_a_worker_killed_after_sending_is_redelivered_and_the_receiver_drops_it(
    outbox: Outbox,
) -> None:
    outbox.webhook()
    (action_id,) = outbox.enqueue("takedown")
    with outbox.worker() as crashed, outbox.worker() as survivor:
        (claim,) = crashed.claim()
        assert crashed.execute(claim).result == "delivered"
        # ... and the process dies before recording it. The row is in flight under a lease:
        assert outbox.statuses() == {action_id: "in_flight"}
        assert survivor.run_once() == 0
        outbox.clock.advance(outbox.settings.actions_lease_seconds)
        assert survivor.run_once() == 1
        # A late answer from the first claim cannot overwrite the second one's outcome.
        assert not crashed.record(claim, crashed.execute(claim))
    action = outbox.action(action_id)
    assert action.status == "delivered"
    assert action.attempts == 2
    assert list(outbox.receiver.deliveries) == [action.idempotency_key]
    assert outbox.receiver.duplicates == 2


def test_a_stopped_worker_hands_back_what_it_had_not_sent(outbox: Outbox) -> None:
    outbox.webhook()
    ids = outbox.enqueue("takedown") + outbox.enqueue("takedown")
    with outbox.worker() as worker:
        claims = worker.claim()
        worker.unclaim(claims)
    for action_id in ids:
        action = outbox.action(action_id)
        assert (action.status, action.attempts) == ("pending", 0)
    assert outbox.receiver.deliveries == {}


def test_stopping_running_workers_leaves_nothing_in_flight(outbox: Outbox) -> None:
    outbox.webhook()
    ids = [action_id for _ in range(40) for action_id in outbox.enqueue("takedown")]
    with outbox.worker(actions_batch_size=5) as worker:
        worker.start(threads=2)
        worker.stop()
    stopped = outbox.statuses()
    with outbox.worker() as successor:
        while successor.run_once():
            pass
    # Whatever the threads had claimed was either sent and recorded or handed back unsent.
    assert set(stopped.values()) <= {"pending", "delivered"}
    for action_id in ids:
        action = outbox.action(action_id)
        assert (action.status, action.attempts) == ("delivered", 1)
    assert len(outbox.receiver.deliveries) == len(ids)
    assert outbox.receiver.duplicates == 0


def test_concurrent_workers_never_claim_the_same_action(outbox: Outbox) -> None:
    outbox.webhook()
    ids = [action_id for _ in range(30) for action_id in outbox.enqueue("takedown")]
    workers = [outbox.worker(actions_batch_size=7) for _ in range(4)]
    start = threading.Barrier(len(workers))
    claimed: list[list[Claim]] = [[] for _ in workers]

    def claim_all(number: int) -> None:
        start.wait()
        while batch := workers[number].claim():
            claimed[number].extend(batch)

    threads = [threading.Thread(target=claim_all, args=(n,)) for n in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in workers:
        worker.close()
    every = [claim.id for batch in claimed for claim in batch]
    assert sorted(every) == sorted(ids)  # each exactly once


def test_client_errors_are_dead_at_once_and_server_errors_retry_with_backoff(
    outbox: Outbox,
) -> None:
    outbox.webhook()
    (refused,) = outbox.enqueue("takedown")
    outbox.receiver.fail_next(1, status=422)
    with outbox.worker() as worker:
        worker.run_once()
        assert outbox.action(refused).status == "dead"
        assert outbox.action(refused).last_error == "HTTP 422: the receiver refused it"

        (throttled,) = outbox.enqueue("takedown")
        outbox.receiver.fail_next(1, status=429)
        worker.run_once()
        action = outbox.action(throttled)
        assert (action.status, action.last_error) == ("pending", "HTTP 429")
        with outbox.db.session() as session:
            (attempt,) = actions.outbox.attempts(session, throttled)
        delay = action.next_attempt_at - attempt.at
        base = outbox.settings.actions_backoff_base_seconds
        assert timedelta(seconds=base / 2) <= delay <= timedelta(seconds=base)


def test_backoff_doubles_up_to_the_cap() -> None:
    for attempt, full in ((1, 2.0), (2, 4.0), (3, 8.0), (10, 100.0), (200, 100.0)):
        delay = backoff_seconds(attempt, base=2.0, cap=100.0)
        assert full / 2 <= delay <= full


def test_dead_after_max_attempts_and_retry_revives_it(outbox: Outbox) -> None:
    outbox.webhook()
    (action_id,) = outbox.enqueue("takedown")
    attempts = outbox.settings.actions_max_attempts
    outbox.receiver.fail_next(attempts, status=503)
    with outbox.worker() as worker:
        for _ in range(attempts):
            assert worker.run_once() == 1
            outbox.clock.advance(outbox.settings.actions_backoff_max_seconds)
        dead = outbox.action(action_id)
        assert dead.status == "dead"
        assert dead.last_error == f"gave up after {attempts} attempts: HTTP 503"
        assert worker.run_once() == 0
        with outbox.db.session() as session:
            actions.retry(session, action_id, actor="user:admin")
        assert worker.run_once() == 1
    assert outbox.action(action_id).status == "delivered"
    with outbox.db.session() as session:
        count = session.scalar(select(func.count()).where(ActionAttempt.action_id == action_id))
    assert count == attempts + 1
    with outbox.db.session() as session, pytest.raises(actions.ActionError):
        actions.retry(session, action_id, actor="user:admin")  # delivered is not dead


def test_no_receiver_is_a_dead_letter_until_one_exists(outbox: Outbox) -> None:
    (action_id,) = outbox.enqueue("stream_cut")
    assert outbox.action(action_id).status == "dead"
    assert outbox.action(action_id).last_error == NO_RECEIVER.format(kind="stream_cut")
    outbox.webhook("streams", ("stream_cut",))
    with outbox.db.session() as session:
        actions.retry(session, action_id, actor="user:admin")
    with outbox.worker() as worker:
        assert worker.run_once() == 1
    assert outbox.action(action_id).status == "delivered"


def test_a_disabled_webhook_parks_its_actions_as_dead_letters(outbox: Outbox) -> None:
    webhook_id = outbox.webhook()
    (action_id,) = outbox.enqueue("takedown")
    with outbox.db.session() as session:
        webhooks.update(session, "user:admin", webhook_id, allow=[], enabled=False)
    with outbox.worker() as worker:
        worker.run_once()
        assert outbox.action(action_id).last_error == "webhook 'platform' is disabled"
        with outbox.db.session() as session:
            webhooks.update(session, "user:admin", webhook_id, allow=[], enabled=True)
            actions.retry(session, action_id, actor="user:admin")
        worker.run_once()
    assert outbox.action(action_id).status == "delivered"


def test_private_webhook_urls_are_refused_unless_allow_listed(outbox: Outbox) -> None:
    for url in (outbox.receiver.url, "http://10.0.0.8/hook", "ftp://example.org/x"):
        with outbox.db.session() as session, pytest.raises(webhooks.WebhookError):
            webhooks.create(session, "user:admin", name="x", url=url, kinds=["takedown"], allow=[])
    webhook_id = outbox.webhook()  # the fixture allow-lists 127.0.0.0/8
    (action_id,) = outbox.enqueue("takedown")
    # Checked again at delivery: a worker without the allow-list will not send there.
    with outbox.worker(url_fetch_allow=[]) as worker:
        worker.run_once()
    action = outbox.action(action_id)
    assert action.status == "dead"
    assert "non-public address" in action.last_error
    assert action.webhook_id == webhook_id
    assert outbox.receiver.deliveries == {}


def test_held_actions_wait_for_release_and_cancel_stops_them(outbox: Outbox) -> None:
    outbox.webhook(kinds=("takedown",))
    held = outbox.enqueue("takedown", awaiting_approval=True)
    refused = outbox.enqueue("takedown", awaiting_approval=True)
    with outbox.worker() as worker:
        assert worker.run_once() == 0
        with outbox.db.session() as session:
            released = actions.release(session, outbox.action(held[0]).decision_id or 0)
            cancelled = actions.cancel(session, outbox.action(refused[0]).decision_id or 0)
        assert [a.id for a in released] == held
        assert cancelled == 1
        assert worker.run_once() == 1
    assert outbox.statuses() == {held[0]: "delivered", refused[0]: "cancelled"}


def test_police_referral_carries_the_evidence_package_as_approved(outbox: Outbox) -> None:
    outbox.webhook("police", ("police_referral",))
    alert_id, decision_id = outbox.decided_alert(approver=True)
    with outbox.db.session() as session:
        (action,) = actions.enqueue(
            session,
            "police_referral",
            alert_id=alert_id,
            decision_id=decision_id,
            payload={"unit": "CTIRU"},
            awaiting_approval=True,
        )
        assert "evidence_package" not in action.payload  # built once it is cleared to leave
        actions.release(session, decision_id)
    with outbox.worker() as worker:
        worker.run_once()
    (delivery,) = outbox.receiver.deliveries.values()
    payload = delivery.body["payload"]
    package = payload["evidence_package"]
    assert payload["unit"] == "CTIRU"
    assert package["alert"]["id"] == alert_id
    assert package["content_sha256"] == "ab" * 32
    assert package["decision"]["approved_by"]["username"].startswith("approver-")
    assert package["signals"][0]["signal_type"] == "sha256"
    assert isinstance(package["audit"], list)


def test_add_to_bank_runs_locally_and_twice_adds_once(outbox: Outbox) -> None:
    from vigil.hashing.banks import BankService

    banks = BankService(outbox.db)
    banks.create("incident")
    with outbox.db.session() as session, pytest.raises(actions.ActionError):
        actions.enqueue(
            session, "add_to_bank", alert_id=1, decision_id=None, payload={"bank": "missing"}
        )
    first = outbox.enqueue("add_to_bank", payload={"bank": "incident", "labels": ["attack"]})
    with outbox.worker() as worker:
        (claim,) = worker.claim()
        worker.execute(claim)  # banked, then "crashed" before recording it
        outbox.clock.advance(outbox.settings.actions_lease_seconds)
        assert worker.run_once() == 1
    assert outbox.action(first[0]).status == "delivered"
    info = banks.get("incident")
    assert (info.entries, info.signals) == (1, 2)
    (signal,) = [s for s in banks.iter_signals("incident") if s.signal_type == "sha256"]
    assert signal.labels == ["attack"]
    with outbox.db.session() as session:
        webhook_rows = session.scalar(select(func.count()).where(Action.webhook_id.is_not(None)))
    assert webhook_rows == 0
