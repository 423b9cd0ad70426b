"""SignalIndexSet over a real database: deltas, refresh, compaction and snapshots."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import delete, event
from sqlalchemy.orm import Session

from vigil.hashing.index import IndexHit, SignalIndexSet
from vigil.store import Database
from vigil.store.models import Bank, BankEntry, EntrySignal, lookup_key

RNG = random.Random(7)


def random_pdq() -> str:
    return f"{RNG.getrandbits(256):064x}"


def near(value: str, bits: int) -> str:
    """``value`` with ``bits`` distinct bits flipped."""
    mask = sum(1 << b for b in RNG.sample(range(256), bits))
    return f"{int(value, 16) ^ mask:064x}"


def add(session: Session, signals: list[tuple[str, str]]) -> list[int]:
    """Flush one bank entry per signal, in a bank shared by all calls; returns the signal ids."""
    bank = session.query(Bank).filter_by(name="test").one_or_none() or Bank(name="test")
    session.add(bank)
    session.flush()
    rows = [
        EntrySignal(
            entry=BankEntry(bank=bank),
            bank_id=bank.id,
            signal_type=signal_type,
            value=value,
            lookup=lookup_key(value),
        )
        for signal_type, value in signals
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def insert(db: Database, signals: list[tuple[str, str]]) -> list[int]:
    """:func:`add` in a transaction of its own, committed."""
    with db.session() as session:
        return add(session, signals)


def pdqs(values: list[str]) -> list[tuple[str, str]]:
    return [("pdq", value) for value in values]


def ids_of(hits: list[IndexHit]) -> set[int]:
    return {hit.signal_id for hit in hits}


def hit_ids(index: SignalIndexSet, values: list[str]) -> list[list[int]]:
    """Per value, the ids of its exact PDQ hits, in a list: a row indexed twice shows."""
    return [sorted(h.signal_id for h in hits) for hits in index.query("pdq", values, 0)]


@contextmanager
def count_statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements ``db`` sends while the block runs."""
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_refresh_picks_up_rows_added_after_construction(db: Database, tmp_path: Path) -> None:
    first = random_pdq()
    (first_id,) = insert(db, [("pdq", first)])
    index = SignalIndexSet(db, tmp_path / "index")
    assert (index.low_water, index.high_water) == (first_id, first_id)

    later = random_pdq()
    later_id, digest_id = insert(db, [("pdq", later), ("md5", "ab" * 16)])
    assert index.query("pdq", [near(later, 20)], 31) == [[]]  # not refreshed yet
    assert index.refresh() == 2
    with count_statements(db) as statements:
        assert index.refresh() == 0  # nothing new: idempotent
    assert len(statements) == 1  # and cheap

    hits = index.query("pdq", [near(first, 31), near(later, 20), near(later, 32)], 31)
    assert [ids_of(h) for h in hits] == [{first_id}, {later_id}, set()]
    assert hits[1][0].distance == 20.0
    assert ids_of(index.query("pdq", [near(later, 32)], 32)[0]) == {later_id}
    assert ids_of(index.query("video_md5", ["AB" * 16], 0)[0]) == {digest_id}
    assert index.query("sha256", ["cd" * 32], 0) == [[]]
    index.close()


def test_vpdq_shares(db: Database, tmp_path: Path) -> None:
    frames = [random_pdq() for _ in range(10)]
    video = json.dumps([f"{h},100,{i}.0" for i, h in enumerate(frames)])
    (video_id,) = insert(db, [("vpdq", video)])
    index = SignalIndexSet(db, tmp_path / "index")
    # A clip: 4 of the video's frames (slightly changed) and 1 unrelated frame.
    clip = [near(h, 10) for h in frames[2:6]] + [random_pdq()]
    query = json.dumps([f"{h},90,{i}.0" for i, h in enumerate(clip)])
    ((hit,),) = index.query("vpdq", [query], 31)
    assert (hit.signal_id, hit.query_share, hit.index_share) == (video_id, 0.8, 0.4)


def test_snapshot_is_loaded_and_compaction_drops_deleted_rows(db: Database, tmp_path: Path) -> None:
    values = [random_pdq() for _ in range(50)]
    ids = insert(db, [("pdq", v) for v in values] + [("sha256", "ef" * 32)])
    index = SignalIndexSet(db, tmp_path / "index")
    index.compact()
    index.close()

    late = random_pdq()
    (late_id,) = insert(db, [("pdq", late)])
    reloaded = SignalIndexSet(db, tmp_path / "index")
    assert (reloaded.low_water, reloaded.high_water) == (late_id, late_id)
    hits = reloaded.query("pdq", [*values, late], 0)
    assert [ids_of(h) for h in hits] == [{i} for i in ids[:50]] + [{late_id}]
    assert ids_of(reloaded.query("sha256", ["ef" * 32], 0)[0]) == {ids[50]}

    with db.session() as session:
        session.execute(delete(EntrySignal).where(EntrySignal.id == ids[0]))
    assert ids_of(reloaded.query("pdq", [values[0]], 0)[0]) == {ids[0]}  # stale until compacted
    reloaded.compact()
    assert reloaded.query("pdq", [values[0]], 0) == [[]]
    assert ids_of(reloaded.query("pdq", [late], 0)[0]) == {late_id}
    snapshots = list((tmp_path / "index").glob("snapshot-*"))
    assert [p.name for p in snapshots] == [f"snapshot-{late_id:015d}"]


def test_compaction_starts_by_itself(db: Database, tmp_path: Path) -> None:
    index = SignalIndexSet(db, tmp_path / "index", compact_after=10)
    values = [random_pdq() for _ in range(12)]
    ids = insert(db, [("pdq", v) for v in values])
    assert index.refresh() == 12
    index.close()  # waits for the background compaction
    assert list((tmp_path / "index").glob(f"snapshot-{ids[-1]:015d}"))
    assert [ids_of(h) for h in index.query("pdq", values, 0)] == [{i} for i in ids]


# SQLite serialises writers, so ids always commit in order there, and it hands a rolled-back id
# out again: the tests below need PostgreSQL's sequences.
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@postgresql_only
def test_rows_committed_out_of_id_order_are_found(db: Database, tmp_path: Path) -> None:
    insert(db, [])  # the bank, committed, so that the two writers below do not wait on it
    index = SignalIndexSet(db, tmp_path / "index")
    slow_values, fast_values = [random_pdq() for _ in range(3)], [random_pdq() for _ in range(3)]
    with db.session() as slow:
        slow_ids = add(slow, pdqs(slow_values))  # ids taken, rows not visible until commit
        fast_ids = insert(db, pdqs(fast_values))
        assert max(slow_ids) < min(fast_ids)

        assert index.refresh() == 3
        assert hit_ids(index, slow_values + fast_values) == [[]] * 3 + [[i] for i in fast_ids]
        assert index.gaps == [(min(slow_ids), max(slow_ids))]
        assert (index.low_water, index.high_water) == (min(slow_ids) - 1, max(fast_ids))
        assert index.refresh() == 0

    assert index.refresh() == 3
    assert hit_ids(index, slow_values + fast_values) == [[i] for i in slow_ids + fast_ids]
    assert (index.gaps, index.low_water) == ([], max(fast_ids))


@postgresql_only
def test_snapshot_keeps_uncommitted_rows_pending(db: Database, tmp_path: Path) -> None:
    insert(db, [])
    early_values, slow_values, fast_values = ([random_pdq()] for _ in range(3))
    early_ids = insert(db, pdqs(early_values))
    index = SignalIndexSet(db, tmp_path / "index")
    with db.session() as slow:
        slow_ids = add(slow, pdqs(slow_values))
        fast_ids = insert(db, pdqs(fast_values))
        index.compact()  # snapshots early and fast, with slow's id as a gap
        assert index.gaps == [(slow_ids[0], slow_ids[0])]

    # A restart reads the snapshot's gap and what lies above it: slow once, nothing twice.
    restarted = SignalIndexSet(db, tmp_path / "index")
    values, ids = early_values + slow_values + fast_values, early_ids + slow_ids + fast_ids
    assert hit_ids(restarted, values) == [[i] for i in ids]
    assert (restarted.gaps, restarted.low_water) == ([], fast_ids[0])
    # And the running set, whose compaction swapped in the snapshot, finds slow too.
    assert index.refresh() == 1
    assert hit_ids(index, values) == [[i] for i in ids]


class RolledBack(Exception):
    pass


def rolled_back_insert(db: Database, signals: list[tuple[str, str]]) -> list[int]:
    """Take ids for ``signals`` in a transaction that then rolls back: the ids never appear."""
    ids: list[int] = []
    with pytest.raises(RolledBack), db.session() as session:
        ids = add(session, signals)
        raise RolledBack
    return ids


@postgresql_only
def test_a_rolled_back_insert_is_given_up_after_the_grace_period(
    db: Database, tmp_path: Path
) -> None:
    insert(db, [])
    patient = SignalIndexSet(db, tmp_path / "patient")
    impatient = SignalIndexSet(db, tmp_path / "impatient", gap_grace=0)
    lost = rolled_back_insert(db, pdqs([random_pdq()]))
    value = random_pdq()
    (kept,) = insert(db, pdqs([value]))
    assert lost[0] < kept

    assert (patient.refresh(), impatient.refresh()) == (1, 1)
    # Within the grace period the gap could still be a slow commit: it holds the low-water mark.
    assert (patient.gaps, patient.low_water) == ([(lost[0], lost[0])], lost[0] - 1)
    # Past it, the gap is given up and stops costing reads.
    assert (impatient.gaps, impatient.low_water) == ([], kept)
    assert hit_ids(patient, [value]) == hit_ids(impatient, [value]) == [[kept]]


@postgresql_only
def test_many_gaps_are_read_as_one_range(db: Database, tmp_path: Path) -> None:
    insert(db, [])
    index = SignalIndexSet(db, tmp_path / "index")
    slow_value = random_pdq()
    values = [random_pdq() for _ in range(120)]
    with db.session() as slow:
        slow_ids = add(slow, pdqs([slow_value]))
        ids = []
        for value in values:  # a rolled-back insert between commits: a gap each
            rolled_back_insert(db, pdqs([random_pdq()]))
            ids += insert(db, pdqs([value]))
        assert index.refresh() == 120
        assert len(index.gaps) == 120  # the slow row's id and the first rolled back one touch
        assert index.refresh() == 0  # the rows seen within the range read are not added again

    assert index.refresh() == 1
    assert hit_ids(index, [slow_value, *values]) == [[i] for i in slow_ids + ids]
    assert index.gaps[0][0] > slow_ids[0]
