"""Hash banks: named lists of known content with their own thresholds."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from vigil.hashing.signals import Signal, get_signal_type
from vigil.store import Bank, BankEntry, Database, EntrySignal, lookup_key

_BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_INSERT_BATCH = 1000


class BankError(Exception):
    """A bank operation that cannot be done (unknown bank, duplicate name, bad setting)."""


class BankNotFound(BankError):
    pass


class BankExists(BankError):
    pass


@dataclass(frozen=True)
class BankInfo:
    id: int
    name: str
    description: str
    negative: bool
    enabled: bool
    pdq_threshold: int | None
    vpdq_query_share: float | None
    vpdq_index_share: float | None
    created_at: datetime
    entries: int = 0
    signals: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "negative": self.negative,
            "enabled": self.enabled,
            "pdq_threshold": self.pdq_threshold,
            "vpdq_query_share": self.vpdq_query_share,
            "vpdq_index_share": self.vpdq_index_share,
            "created_at": self.created_at.isoformat(),
            "entries": self.entries,
            "signals": self.signals,
        }


@dataclass
class NewEntry:
    """Content to add to a bank: its signals and what we know about it."""

    signals: list[Signal]
    labels: list[str] = field(default_factory=list)
    source: str = ""
    content_ref: str = ""
    seen_at: datetime | None = None


@dataclass(frozen=True)
class BankedSignal:
    """A signal as stored in a bank, for export."""

    signal_type: str
    value: str
    labels: list[str]
    entry_id: int
    source: str
    content_ref: str
    quality: int | None
    variant: str | None


def _check_thresholds(
    pdq_threshold: int | None, query_share: float | None, index_share: float | None
) -> None:
    if pdq_threshold is not None and not 0 <= pdq_threshold <= 128:
        raise BankError("pdq_threshold must be between 0 and 128 bits")
    for name, share in (("vpdq_query_share", query_share), ("vpdq_index_share", index_share)):
        if share is not None and not 0.0 <= share <= 1.0:
            raise BankError(f"{name} must be between 0 and 1")


def _normalise_signal(signal: Signal) -> Signal:
    signal_type = get_signal_type(signal.signal_type)
    return Signal(
        signal_type.name, signal_type.validate(signal.value), signal.quality, signal.variant
    )


class BankService:
    """Create, change and fill banks. ``on_change`` runs after a commit that added signals, so an
    in-process index can pick them up at once."""

    def __init__(self, db: Database, on_change: Callable[[], object] | None = None) -> None:
        self.db = db
        self._on_change = on_change

    def create(
        self,
        name: str,
        *,
        description: str = "",
        negative: bool = False,
        pdq_threshold: int | None = None,
        vpdq_query_share: float | None = None,
        vpdq_index_share: float | None = None,
    ) -> BankInfo:
        if not _BANK_NAME.match(name):
            raise BankError(
                "a bank name is 1-128 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        _check_thresholds(pdq_threshold, vpdq_query_share, vpdq_index_share)
        with self.db.session() as session:
            if session.scalar(select(Bank.id).where(Bank.name == name)) is not None:
                raise BankExists(f"a bank named {name!r} already exists")
            bank = Bank(
                name=name,
                description=description,
                negative=negative,
                enabled=True,
                pdq_threshold=pdq_threshold,
                vpdq_query_share=vpdq_query_share,
                vpdq_index_share=vpdq_index_share,
            )
            session.add(bank)
            session.flush()
            return self._info(session, bank)

    def list_banks(self) -> list[BankInfo]:
        with self.db.session() as session:
            banks = session.scalars(select(Bank).order_by(Bank.name)).all()
            return [self._info(session, bank) for bank in banks]

    def get(self, name: str) -> BankInfo:
        with self.db.session() as session:
            return self._info(session, self._bank(session, name))

    def update(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        description: str | None = None,
        pdq_threshold: int | None = None,
        vpdq_query_share: float | None = None,
        vpdq_index_share: float | None = None,
    ) -> BankInfo:
        _check_thresholds(pdq_threshold, vpdq_query_share, vpdq_index_share)
        changes = {
            "enabled": enabled,
            "description": description,
            "pdq_threshold": pdq_threshold,
            "vpdq_query_share": vpdq_query_share,
            "vpdq_index_share": vpdq_index_share,
        }
        with self.db.session() as session:
            bank = self._bank(session, name)
            for attribute, value in changes.items():
                if value is not None:
                    setattr(bank, attribute, value)
            session.flush()
            return self._info(session, bank)

    def delete(self, name: str) -> None:
        with self.db.session() as session:
            session.delete(self._bank(session, name))

    def add_entries(self, name: str, entries: Iterable[NewEntry]) -> list[int]:
        """Add entries in batches; every signal is validated before anything is written."""
        entry_ids: list[int] = []
        batch: list[NewEntry] = []
        for entry in entries:
            batch.append(
                NewEntry(
                    [_normalise_signal(s) for s in entry.signals],
                    list(entry.labels),
                    entry.source,
                    entry.content_ref,
                    entry.seen_at,
                )
            )
            if len(batch) >= _INSERT_BATCH:
                entry_ids.extend(self._insert(name, batch))
                batch = []
        if batch:
            entry_ids.extend(self._insert(name, batch))
        return entry_ids

    def find_entry(self, name: str, signal: Signal) -> int | None:
        """The entry of this bank that already holds exactly this signal, if any."""
        with self.db.session() as session:
            bank_id = self._bank(session, name).id
            return session.scalar(
                select(EntrySignal.entry_id)
                .where(EntrySignal.bank_id == bank_id)
                .where(EntrySignal.signal_type == signal.signal_type)
                .where(EntrySignal.lookup == lookup_key(signal.value))
                .limit(1)
            )

    def iter_signals(self, name: str) -> Iterator[BankedSignal]:
        with self.db.session() as session:
            bank = self._bank(session, name)
            rows = session.execute(
                select(EntrySignal, BankEntry)
                .join(BankEntry, EntrySignal.entry_id == BankEntry.id)
                .where(EntrySignal.bank_id == bank.id)
                .order_by(EntrySignal.id)
                .execution_options(yield_per=_INSERT_BATCH)
            )
            for signal, entry in rows:
                yield BankedSignal(
                    signal.signal_type,
                    signal.value,
                    list(entry.labels),
                    entry.id,
                    entry.source,
                    entry.content_ref,
                    signal.quality,
                    signal.variant,
                )

    def _insert(self, name: str, batch: list[NewEntry]) -> list[int]:
        # Core bulk inserts: an import of a million hashes must not build a million ORM objects.
        with self.db.session() as session:
            bank_id = self._bank(session, name).id
            entry_ids = list(
                session.scalars(
                    insert(BankEntry).returning(BankEntry.id, sort_by_parameter_order=True),
                    [
                        {
                            "bank_id": bank_id,
                            "labels": entry.labels,
                            "source": entry.source,
                            "content_ref": entry.content_ref,
                            "seen_at": entry.seen_at,
                        }
                        for entry in batch
                    ],
                )
            )
            signal_rows = [
                {
                    "entry_id": entry_id,
                    "bank_id": bank_id,
                    "signal_type": s.signal_type,
                    "value": s.value,
                    "lookup": lookup_key(s.value),
                    "quality": s.quality,
                    "variant": s.variant,
                }
                for entry_id, entry in zip(entry_ids, batch, strict=True)
                for s in entry.signals
            ]
            if signal_rows:
                session.execute(insert(EntrySignal), signal_rows)
        if self._on_change is not None:
            self._on_change()
        return entry_ids

    @staticmethod
    def _bank(session: Session, name: str) -> Bank:
        bank = session.scalar(select(Bank).where(Bank.name == name))
        if bank is None:
            raise BankNotFound(f"no bank named {name!r}")
        return bank

    @staticmethod
    def _info(session: Session, bank: Bank) -> BankInfo:
        entries = session.scalar(select(func.count()).where(BankEntry.bank_id == bank.id)) or 0
        signals = session.scalar(select(func.count()).where(EntrySignal.bank_id == bank.id)) or 0
        return BankInfo(
            bank.id,
            bank.name,
            bank.description,
            bank.negative,
            bank.enabled,
            bank.pdq_threshold,
            bank.vpdq_query_share,
            bank.vpdq_index_share,
            bank.created_at,
            entries,
            signals,
        )
