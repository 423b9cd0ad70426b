from __future__ import annotations

import pytest
from sqlalchemy import func, select

from vigil.hashing import BankError, BankNotFound, BankService, NewEntry, Signal
from vigil.store import Database, EntrySignal

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_bank_lifecycle(db: Database) -> None:
    changes: list[int] = []
    banks = BankService(db, on_change=lambda: changes.append(1))
    created = banks.create("incident-1", description="attack footage", pdq_threshold=24)
    assert (created.name, created.pdq_threshold, created.enabled) == ("incident-1", 24, True)
    banks.create("benign", negative=True)
    assert [b.name for b in banks.list_banks()] == ["benign", "incident-1"]

    ids = banks.add_entries(
        "incident-1",
        [
            NewEntry([Signal("pdq", PDQ.upper(), 100)], ["terror"], "gifct", "a.jpg"),
            NewEntry([Signal("video_md5", "A" * 32), Signal("sha256", "b" * 64)], ["x"]),
        ],
    )
    assert len(ids) == 2 and changes == [1]
    info = banks.get("incident-1")
    assert (info.entries, info.signals) == (2, 3)
    exported = list(banks.iter_signals("incident-1"))
    assert [(s.signal_type, s.value, s.labels) for s in exported] == [
        ("pdq", PDQ, ["terror"]),
        ("md5", "a" * 32, ["x"]),
        ("sha256", "b" * 64, ["x"]),
    ]

    assert banks.update("incident-1", enabled=False).enabled is False
    banks.delete("incident-1")
    with pytest.raises(BankNotFound):
        banks.get("incident-1")
    assert [b.name for b in banks.list_banks()] == ["benign"]


def test_invalid_input_writes_nothing(db: Database) -> None:
    banks = BankService(db)
    banks.create("b")
    with pytest.raises(BankError, match="already exists"):
        banks.create("b")
    for bad_name in ("", "../etc", "x" * 200, "spa ce", "‮rtl"):
        with pytest.raises(BankError):
            banks.create(bad_name)
    with pytest.raises(BankError, match="pdq_threshold"):
        banks.create("c", pdq_threshold=300)
    with pytest.raises(ValueError, match="64 hex"):
        banks.add_entries(
            "b", [NewEntry([Signal("pdq", PDQ, 100)]), NewEntry([Signal("pdq", "ab")])]
        )
    assert banks.get("b").entries == 0
    with pytest.raises(BankNotFound):
        banks.add_entries("missing", [NewEntry([Signal("pdq", PDQ)])])


def test_signal_ids_are_never_reused(db: Database) -> None:
    """Indexes follow the signal table by id, so a deleted id must not come back (SQLite would
    reuse the highest one without AUTOINCREMENT)."""
    banks = BankService(db)
    banks.create("a")
    banks.add_entries("a", [NewEntry([Signal("pdq", PDQ, 100)])])
    before = max(s.entry_id for s in banks.iter_signals("a"))
    banks.delete("a")
    banks.create("a")
    banks.add_entries("a", [NewEntry([Signal("pdq", PDQ, 100)])])
    with db.session() as session:
        assert session.scalar(select(func.min(EntrySignal.id))) == 2
    assert max(s.entry_id for s in banks.iter_signals("a")) > before
