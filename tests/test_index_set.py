"""SignalIndexSet over a real database: deltas, refresh, compaction and snapshots."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sqlalchemy import delete

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


def insert(db: Database, signals: list[tuple[str, str]]) -> list[int]:
    """One bank entry per signal, in a bank shared by all calls; returns the signal ids."""
    with db.session() as session:
        bank = session.query(Bank).filter_by(name="test").one_or_none() or Bank(name="test")
        session.add(bank)
        session.flush()
        rows = []
        for signal_type, value in signals:
            entry = BankEntry(bank=bank)
            rows.append(
                EntrySignal(
                    entry=entry,
                    bank_id=bank.id,
                    signal_type=signal_type,
                    value=value,
                    lookup=lookup_key(value),
                )
            )
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def ids_of(hits: list[IndexHit]) -> set[int]:
    return {hit.signal_id for hit in hits}


def test_refresh_picks_up_rows_added_after_construction(db: Database, tmp_path: Path) -> None:
    first = random_pdq()
    (first_id,) = insert(db, [("pdq", first)])
    index = SignalIndexSet(db, tmp_path / "index")
    assert index.watermark == first_id

    later = random_pdq()
    later_id, digest_id = insert(db, [("pdq", later), ("md5", "ab" * 16)])
    assert index.query("pdq", [near(later, 20)], 31) == [[]]  # not refreshed yet
    assert index.refresh() == 2
    assert index.refresh() == 0  # nothing new: cheap and idempotent

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
    assert reloaded.watermark == late_id
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
