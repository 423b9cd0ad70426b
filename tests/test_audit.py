"""The hash-chained audit log on SQLite and PostgreSQL: appends inside the caller's transaction,
tampering (changed, inserted, deleted rows, made with raw SQL) found and named, concurrent appends
kept on one chain, JSONL export, ``vigil audit``, ``GET /v1/audit``."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from typer.testing import CliRunner

from vigil.audit import (
    GENESIS,
    event_hash,
    evidence_viewed,
    export_jsonl,
    record,
    searched,
    verify,
)
from vigil.cli.audit import audit_app
from vigil.config import Settings, get_settings
from vigil.store import Database
from vigil.store.models import AuditEvent

from test_api_support import Api

pytest_plugins = ["test_api_support"]


def _append(db: Database, count: int, actor: str = "user:alice") -> list[int]:
    ids = []
    for number in range(count):
        with db.session() as session:
            ids.append(
                record(session, actor, "bank.update", "bank", f"b{number}", {"n": number}).id
            )
    return ids


def _hash_of(db: Database, event_id: int) -> str:
    with db.session() as session:
        digest = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == event_id))
    assert digest is not None
    return digest


def test_an_untouched_chain_verifies(db: Database) -> None:
    assert verify(db).ok and verify(db).checked == 0 and verify(db).last_hash == GENESIS
    ids = _append(db, 3)
    with db.session() as session:
        evidence_viewed(session, "user:bob", "alert", 7, media="keyframe-3")
        searched(session, "user:bob", "alerts", q="christchurch", status="open")
    report = verify(db)
    assert (report.ok, report.checked, report.problem) == (True, 5, None)
    with db.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert events[1].id == ids[1] and events[3].detail == {"media": "keyframe-3"}
    assert (events[4].action, events[4].object_type) == ("search", "alerts")
    assert report.last_hash == events[-1].hash


def test_an_event_rolls_back_with_the_change_it_records(db: Database) -> None:
    _append(db, 1)
    with pytest.raises(RuntimeError), db.session() as session:
        record(session, "user:alice", "bank.delete", "bank", "x")
        raise RuntimeError("the change failed")
    _append(db, 1)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2
    assert verify(db).ok


def test_a_changed_row_is_named(db: Database) -> None:
    ids = _append(db, 4)
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET actor = 'user:mallory' WHERE id = :id"), {"id": ids[2]}
        )
    report = verify(db)
    assert (report.problem, report.event_id, report.checked) == ("changed", ids[2], 2)
    assert f"#{ids[2]} was changed" in report.message


def test_a_changed_and_rehashed_row_still_breaks_the_chain(db: Database) -> None:
    ids = _append(db, 3)
    with db.session() as session:
        event = session.get(AuditEvent, ids[1])
        assert event is not None
        event.detail = {"n": 99}
        rehashed = event_hash(event)
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET detail = :d, hash = :h WHERE id = :id"),
            {"d": '{"n": 99}', "h": rehashed, "id": ids[1]},
        )
    report = verify(db)
    assert (report.problem, report.event_id) == ("deleted", ids[2])
    assert "replaced" in report.message


def _leave_an_id_gap(db: Database) -> None:
    """What a rolled-back transaction leaves on PostgreSQL (on SQLite, a deleted row)."""
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_event (at, actor, action, object_type, object_id, detail, "
                "prev_hash, hash) VALUES (:at, 'x', 'x', '', '', '{}', '', 'gap')"
            ),
            {"at": "2024-01-01 00:00:00"},
        )
        connection.execute(text("DELETE FROM audit_event WHERE hash = 'gap'"))


def test_an_inserted_row_is_named(db: Database) -> None:
    [first] = _append(db, 1)
    _leave_an_id_gap(db)
    after = _append(db, 2)
    # A forger who knows the scheme slips a self-consistent row into the gap.
    forged_id = first + 1
    assert forged_id < after[0]
    with db.session() as session:
        at = session.scalars(select(AuditEvent.at).where(AuditEvent.id == first)).one()
    forged = AuditEvent(
        id=forged_id,
        at=at,
        actor="user:mallory",
        action="decision.approve",
        object_type="decision",
        object_id="12",
        detail={},
        prev_hash=_hash_of(db, first),
    )
    forged.hash = event_hash(forged)
    columns = ("id", "at", "actor", "action", "object_type", "object_id", "detail", "prev_hash")
    with db.engine.begin() as connection:
        row = {column: getattr(forged, column) for column in (*columns, "hash")}
        connection.execute(insert(AuditEvent.__table__), row)
    report = verify(db)
    assert (report.problem, report.event_id, report.checked) == ("inserted", forged_id, 2)
    assert f"#{forged_id} was inserted" in report.message


def test_a_deleted_row_is_named(db: Database) -> None:
    ids = _append(db, 5)
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[2]})
    report = verify(db)
    assert (report.problem, report.event_id, report.checked) == ("deleted", ids[3], 2)
    assert f"between event #{ids[1]} and event #{ids[3]}" in report.message


def test_deleting_the_first_rows_is_found(db: Database) -> None:
    ids = _append(db, 3)
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[0]})
    report = verify(db)
    assert (report.problem, report.event_id) == ("deleted", ids[1])
    assert "between the start and" in report.message


def test_concurrent_appends_keep_one_chain(db: Database) -> None:
    threads, per_thread = 6, 15
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            _append(db, per_thread, actor=f"user:w{worker}")
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    report = verify(db)
    assert (report.ok, report.checked) == (True, threads * per_thread)
    with db.session() as session:
        prev_hashes = session.scalars(select(AuditEvent.prev_hash)).all()
    assert len(set(prev_hashes)) == len(prev_hashes)  # no two events share a predecessor


def test_export_jsonl_round_trips(db: Database) -> None:
    _append(db, 3)
    out = io.StringIO()
    assert export_jsonl(db, out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["object_id"] for line in lines] == ["b0", "b1", "b2"]
    assert lines[0]["prev_hash"] == GENESIS and lines[1]["prev_hash"] == lines[0]["hash"]
    assert set(lines[0]) == {
        "id",
        "at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "detail",
        "prev_hash",
        "hash",
    }


@pytest.fixture
def cli_env(settings: Settings) -> Iterator[dict[str, str]]:
    env = {"VIGIL_HOME": str(settings.home), "VIGIL_DATABASE_URL": settings.resolved_database_url}
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_vigil_audit_verify_and_export(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = Database(settings.resolved_database_url)
    try:
        ids = _append(db, 3)
        runner = CliRunner()
        intact = runner.invoke(audit_app, ["verify"], env=cli_env)
        assert intact.exit_code == 0 and "3 events, chain intact" in intact.stdout
        exported = runner.invoke(
            audit_app, ["export", "-o", str(tmp_path / "a.jsonl")], env=cli_env
        )
        assert exported.exit_code == 0
        assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
        to_stdout = runner.invoke(audit_app, ["export"], env=cli_env)
        assert [json.loads(x)["id"] for x in to_stdout.stdout.splitlines()] == ids
        with db.engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[1]})
        tampered = runner.invoke(audit_app, ["verify"], env=cli_env)
    finally:
        db.dispose()
    assert tampered.exit_code == 1
    assert f"event #{ids[2]}" in tampered.stderr and "deleted" in tampered.stderr


def test_the_audit_api_filters_and_pages(api: Api) -> None:
    with api.known.db.session() as session:
        for number in range(5):
            record(session, "user:alice", "search", "alerts", "", {"n": number})
        record(session, "user:bob", "search", "alerts")
    with api.client("supervisor") as client:
        first = client.get("/v1/audit", params={"actor": "user:alice", "limit": 3}).json()
        second = client.get(
            "/v1/audit", params={"actor": "user:alice", "limit": 3, "before": first["next_before"]}
        ).json()
        searches = client.get("/v1/audit", params={"action": "search"}).json()
        uses = client.get("/v1/audit", params={"action": "token.use"}).json()
    assert [e["detail"]["n"] for e in first["events"]] == [4, 3, 2]
    assert [e["detail"]["n"] for e in second["events"]] == [1, 0]
    assert second["next_before"] is None
    assert len(searches["events"]) == 6
    # The API's own reads are on the record, by route template.
    assert {e["object_id"] for e in uses["events"]} == {"/v1/audit"}
    assert {e["actor"] for e in uses["events"]} == {"token:test-supervisor"}
