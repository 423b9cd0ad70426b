"""Fingerprinting a live incident into a bank at once, with no human in the loop.

Hashes are not an action against anyone: they only let the next upload of the same footage be
recognised (and reviewed) from the first minute. The bank is made on first use with the
default policy (``alert_on_match``, no automatic action), so a re-upload raises an alert for a
person; a platform that wants automatic blocking sets the bank's policy itself after review.

Entries carry ``content_ref = live:<session>:<incident>:<part>``, which is how the stream's own
known-content check recognises (and ignores) its own fingerprints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vigil.hashing import BankExists, KnownContent

SOURCE = "vigil-live"


#: Every live incident's bank entries have content references under this prefix.
INCIDENT_REF_PREFIX = "live:"


def incident_prefix(session_id: str) -> str:
    return f"{INCIDENT_REF_PREFIX}{session_id}:"


@dataclass(frozen=True)
class Fingerprints:
    entry_ids: tuple[int, ...]
    failed: tuple[str, ...]


class IncidentBank:
    def __init__(self, known: KnownContent, bank: str) -> None:
        self.known = known
        self.bank = bank
        self._ready = False

    def ensure(self) -> None:
        if self._ready:
            return
        with contextlib.suppress(BankExists):  # made by another process or an earlier run
            self.known.banks.create(
                self.bank,
                description="Footage of live incidents, fingerprinted as they happened "
                "(unconfirmed until reviewed).",
            )
        self._ready = True

    def add(
        self, session_id: str, incident: int, files: Sequence[Path], labels: Sequence[str]
    ) -> Fingerprints:
        """Hash ``files`` (a clip: vPDQ + MD5/SHA-256; keyframes: PDQ) into the bank."""
        self.ensure()
        entry_ids: list[int] = []
        failed: list[str] = []
        for path in files:
            result, entry_id = self.known.add_file(
                self.bank,
                path,
                labels=labels,
                source=SOURCE,
                content_ref=f"{incident_prefix(session_id)}{incident}:{path.name}",
            )
            if entry_id is None:
                failed.append(f"{path.name}: {result.error}")
            else:
                entry_ids.append(entry_id)
        return Fingerprints(tuple(entry_ids), tuple(failed))
