"""Outbox under load: alerts arrive at a steady rate, reviewers decide them, and the webhook
receiver flaps down and up while vigil's delivery worker crashes once mid-batch.

Everything stays on 127.0.0.1: the reference receiver (``vigil.actions.receiver``) checks each
signature and drops redeliveries by idempotency key. Per backend the run reports actions/s
delivered, enqueue-to-delivery latency (p50/p95/max, from the action row's ``created_at`` to the
receiver's first sight of its key), actions lost (queued but never received, or received but
not queued) and redeliveries the receiver dropped. Confirmations that also bank the content
check that ``add_to_bank`` adds one entry per alert.

Reproduce (about 100 s; needs PostgreSQL on localhost:5432, as the tests do)::

    .venv/bin/python bench/outbox_load.py      # writes bench/results/outbox_load.md
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

from sqlalchemy import create_engine, select, text

from vigil.accounts import Principal
from vigil.actions import ActionKind, OutboxWorker, webhooks
from vigil.actions.receiver import WebhookReceiver
from vigil.api.settings import ApiSettings
from vigil.hashing.banks import BankService
from vigil.logs import configure_logging
from vigil.review import NewAlert, ReviewPolicy, approve, claim_next, create_alert, decide
from vigil.store import Database
from vigil.store.models import Action, UserAccount

RESULTS = Path(__file__).resolve().parent / "results" / "outbox_load.md"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@localhost:5432/postgres"
SECRET = "whsec_bench-secret-long-enough-to-sign"
#: The receiver's schedule, repeated: seconds up, then seconds down.
UP_SECONDS, DOWN_SECONDS = 6.0, 3.0
DRAIN_SECONDS = 40.0
IDLE = 0.02


@dataclass
class Run:
    backend: str
    produce_seconds: float
    alerts: int
    webhook_actions: int
    delivered: int
    lost: int
    redeliveries: int
    bad_signatures: int
    latencies: list[float]
    elapsed: float
    banked_expected: int
    banked: int
    outages: int
    unrecorded: int


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"vigil_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settings_for(url: str) -> ApiSettings:
    return ApiSettings(
        database_url=url,
        url_fetch_allow=[ip_network("127.0.0.0/8")],
        actions_poll_seconds=0.1,
        actions_backoff_base_seconds=0.25,
        actions_backoff_max_seconds=2.0,
        actions_max_attempts=200,
        actions_connect_timeout=1.0,
        actions_request_timeout=3.0,
        actions_lease_seconds=10.0,
    )


def people(db: Database) -> tuple[Principal, Principal]:
    with db.session() as session:
        reviewer = UserAccount(username="bench-reviewer", roles=["reviewer"])
        approver = UserAccount(username="bench-supervisor", roles=["supervisor"])
        session.add_all([reviewer, approver])
        session.flush()
        return (
            Principal(reviewer.id, reviewer.username, frozenset({"reviewer"})),
            Principal(approver.id, approver.username, frozenset({"supervisor"})),
        )


def produce(db: Database, policy: ReviewPolicy, rate: float, seconds: float, first: int) -> int:
    """Alerts ``first``, ``first + 1``, ... at a steady rate (scheduled, so a slow insert does
    not lower it); a fifth are live streams. Returns how many."""
    started = time.monotonic()
    count = 0
    while (due := started + count / rate) < started + seconds:
        time.sleep(max(0.0, due - time.monotonic()))
        number = first + count
        digest = hashlib.sha256(f"content-{number}".encode()).hexdigest()
        new = NewAlert(
            dedupe_key=f"bench-{number}",
            source="hashing",
            content_kind="stream" if number % 5 == 0 else "image",
            content_ref=f"upload/{number}",
            url=f"https://platform.example/p/{number}",
            signals=[{"signal_type": "sha256", "signal": digest, "quality": None}],
            severity=8,
        )
        with db.session() as session:
            create_alert(session, new, weights=policy.weights, actor="bench:detector")
        count += 1
    return count


def review(
    db: Database, policy: ReviewPolicy, people: tuple[Principal, Principal], stop: threading.Event
) -> int:
    """Claim and decide until the queue stays empty after ``stop``: every tenth alert is
    referred (four-eyes: approved by the second person), every fourth confirmation also
    banks the content. Returns how many confirmations banked."""
    reviewer, approver = people
    decided = banked = 0
    while True:
        with db.session() as session:
            alert = claim_next(session, reviewer, policy.claim_ttl)
            if alert is not None:
                alert_id, stream = alert.id, alert.content_kind == "stream"
        if alert is None:
            if stop.is_set():
                return banked
            time.sleep(IDLE)
            continue
        with db.session() as session:
            if decided % 10 == 9:
                decision = decide(session, reviewer, alert_id, "refer", "planning an attack")
                approve(session, approver, decision.id)
            elif decided % 4 == 0:
                kinds: list[ActionKind] = ["stream_cut" if stream else "takedown", "add_to_bank"]
                decide(session, reviewer, alert_id, "confirm", "match", kinds, bank="incident")
                banked += 1
            else:
                decide(session, reviewer, alert_id, "confirm", "matches the attack video")
        decided += 1


def flap(receiver: WebhookReceiver, stop: threading.Event) -> int:
    outages = 0
    while not stop.wait(UP_SECONDS):
        receiver.stop()
        outages += 1
        stop.wait(DOWN_SECONDS)
        receiver.start()
    return outages


def crash_and_restart(
    worker: OutboxWorker, db: Database, settings: ApiSettings
) -> tuple[OutboxWorker, int]:
    """vigil dies mid-batch: the worker is cut off, and a batch it had claimed is half sent
    with nothing recorded (what ``kill -9`` between the POST and the commit leaves). A new
    worker takes over; the claimed rows come back when their lease runs out. Returns the new
    worker and how many the receiver took without vigil recording it."""
    worker.close()
    with OutboxWorker(db, settings) as killed:
        claims = killed.claim()
        outcomes = [killed.execute(claim) for claim in claims[: len(claims) // 2]]
    fresh = OutboxWorker(db, settings)
    fresh.start()
    took = sum(
        claim.receiver is not None and outcome.result == "delivered"
        for claim, outcome in zip(claims, outcomes, strict=False)
    )
    return fresh, took


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(backend: str, rate: float, seconds: float) -> Run:
    with database(backend) as url:
        settings = settings_for(url)
        db = Database(url)
        policy = ReviewPolicy.of(settings)
        receiver = WebhookReceiver(SECRET).start()
        BankService(db).create("incident")
        with db.session() as session:
            webhooks.create(
                session,
                "bench:admin",
                name="platform",
                url=receiver.url,
                kinds=["takedown", "stream_cut", "police_referral"],
                allow=settings.url_fetch_allow,
                secret=SECRET,
            )
        principals = people(db)
        worker = OutboxWorker(db, settings)
        worker.start()
        stop_review, stop_flap = threading.Event(), threading.Event()
        reviewed: list[int] = []
        reviewer = threading.Thread(
            target=lambda: reviewed.append(review(db, policy, principals, stop_review))
        )
        flaps: list[int] = []
        flapper = threading.Thread(target=lambda: flaps.append(flap(receiver, stop_flap)))
        started = time.time()
        reviewer.start()
        flapper.start()
        first_half = produce(db, policy, rate, seconds / 2, first=0)
        worker, unrecorded = crash_and_restart(worker, db, settings)
        alerts = first_half + produce(db, policy, rate, seconds / 2, first=first_half)
        stop_review.set()
        reviewer.join()
        stop_flap.set()
        flapper.join()
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and _undelivered(db):
            time.sleep(0.1)
        worker.close()
        with db.session() as session:
            rows = session.execute(
                select(Action.idempotency_key, Action.status, Action.created_at).where(
                    Action.webhook_id.is_not(None)
                )
            ).all()
        banked = BankService(db).get("incident").entries
        deliveries = receiver.deliveries
        receiver.stop()
        db.dispose()
    keys = {row.idempotency_key for row in rows}
    latencies = [
        deliveries[row.idempotency_key].received_at - row.created_at.timestamp()
        for row in rows
        if row.idempotency_key in deliveries
    ]
    last = max((d.received_at for d in deliveries.values()), default=started)
    return Run(
        backend=backend,
        produce_seconds=seconds,
        alerts=alerts,
        webhook_actions=len(rows),
        delivered=sum(row.status == "delivered" for row in rows),
        lost=len(keys - set(deliveries)) + len(set(deliveries) - keys),
        redeliveries=receiver.duplicates,
        bad_signatures=receiver.bad_signatures,
        latencies=latencies,
        elapsed=last - started,
        banked_expected=reviewed[0] if reviewed else -1,
        banked=banked,
        outages=flaps[0] if flaps else 0,
        unrecorded=unrecorded,
    )


def _undelivered(db: Database) -> int:
    with db.session() as session:
        return len(
            session.scalars(
                select(Action.id).where(Action.status.in_(("pending", "in_flight"))).limit(1)
            ).all()
        )


def report(runs: list[Run], rate: float) -> str:
    lines = [
        "# Outbox under load: flapping receiver, worker crash",
        "",
        "Reproduce: `.venv/bin/python bench/outbox_load.py`",
        "",
        f"Alerts created at {rate:g}/s; one reviewer decides them as they come (every 10th a "
        "police referral approved by a second person, every 4th confirmation also banks the "
        "content); a signed webhook receiver on 127.0.0.1 is up "
        f"{UP_SECONDS:g} s then down {DOWN_SECONDS:g} s, over and over; the delivery worker "
        "(2 threads) crashes half-way with a claimed batch half sent and nothing recorded, and a "
        "new one takes over (lease 10 s). Backoff 0.25 s doubling to 2 s. "
        "Machine: 2 cores shared by the database, vigil and the receiver.",
        "",
        "| backend | alerts | webhook actions | delivered | lost | redeliveries dropped by "
        "key | bad signatures | actions/s | p50 latency | p95 latency | max latency | banked "
        "(expected) | receiver outages | received but unrecorded at the crash |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        throughput = r.delivered / r.elapsed if r.elapsed > 0 else 0.0
        lines.append(
            f"| {r.backend} | {r.alerts} | {r.webhook_actions} | {r.delivered} | {r.lost} | "
            f"{r.redeliveries} | {r.bad_signatures} | {throughput:.1f} | "
            f"{statistics.median(r.latencies):.2f} s | {percentile(r.latencies, 0.95):.2f} s | "
            f"{max(r.latencies):.2f} s | {r.banked} ({r.banked_expected}) | {r.outages} | "
            f"{r.unrecorded} |"
        )
    lines += [
        "",
        "actions/s: webhook actions delivered over the time from the first alert to the last "
        "delivery, outages included; it is bounded by the alert rate, not by the worker. "
        "Latency: from the action's commit (with its decision) to the receiver's first sight of "
        "its idempotency key; the tail is the receiver's downtime plus backoff. Lost: actions "
        "queued but never received plus deliveries of keys never queued.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=15.0, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=40.0, help="alert production time")
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    args = parser.parse_args()
    configure_logging("WARNING")
    runs = []
    for backend in args.backends:
        result = run(backend, args.rate, args.seconds)
        print(result.backend, result.delivered, "delivered,", result.lost, "lost", flush=True)
        runs.append(result)
    RESULTS.write_text(report(runs, args.rate))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
