"""``add_to_bank``: confirmed content's signals go into a bank (hash sharing, e.g. an incident
bank), carried out by the delivery worker like any other action."""

from __future__ import annotations

from typing import Any

from vigil.hashing.banks import BankService, NewEntry
from vigil.hashing.signals import Signal

SOURCE_PREFIX = "vigil-alert:"


def alert_signals(stored: list[Any]) -> list[Signal]:
    """Signals as an alert stores them (``{"signal_type", "signal", "quality", "variant"}``, the
    shape hashing results take in JSON)."""
    return [
        Signal(s["signal_type"], s.get("signal") or s["value"], s.get("quality"), s.get("variant"))
        for s in stored
        if isinstance(s, dict)
    ]


def _already_banked(banks: BankService, bank: str, signals: list[Signal]) -> int | None:
    """The entry that already holds this content: the same file (SHA-256) when known, else an
    entry per signal, as adding a file twice is refused in :meth:`KnownContent.add_file`."""
    sha256 = [s for s in signals if s.signal_type == "sha256"]
    found = [banks.find_entry(bank, s) for s in (sha256 or signals)]
    return found[0] if found and all(entry is not None for entry in found) else None


def add_to_bank(
    banks: BankService,
    *,
    bank: str,
    alert_id: int,
    content_ref: str,
    signals: list[Any],
    labels: list[str],
) -> int:
    """Add the alert's signals to ``bank``; returns the entry id. Idempotent: a second run (a
    redelivery after a crash, or the same content confirmed again) finds the first entry."""
    parsed = alert_signals(signals)
    if not parsed:
        raise ValueError(f"alert {alert_id} has no signals to bank")
    existing = _already_banked(banks, bank, parsed)
    if existing is not None:
        return existing
    entry = NewEntry(parsed, labels, f"{SOURCE_PREFIX}{alert_id}", content_ref)
    (entry_id,) = banks.add_entries(bank, [entry])
    return entry_id
