"""Reports from the public: stored, matched against the banks, and put in the review queue.

A reporter is never identified: the client address only ever becomes an HMAC under a key the
service keeps, used to count that client's reports in the rate-limit window.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from vigil import audit, review
from vigil.hashing import HashResult, KnownContent, MatchReport
from vigil.reports.references import new_reference
from vigil.reports.settings import ReportSettings
from vigil.store import evidence
from vigil.store.models import Bank, PublicReport, utcnow

ACTOR = "public:report"
_MAX_URL = 2048
_KEY_FILE = Path("secrets") / "report-client.key"


class ReportError(ValueError):
    """A report that cannot be taken as sent."""


class RateLimited(ReportError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many reports from this client; try again later")
        self.retry_after = retry_after


@dataclass(frozen=True)
class NewReport:
    url: str = ""
    description: str = ""
    #: An uploaded file (the caller deletes it afterwards: the store keeps its own copy).
    upload: Path | None = None


@dataclass(frozen=True)
class Receipt:
    reference: str
    alert_id: int


def _client_key(settings: ReportSettings) -> bytes:
    if settings.report_client_key is not None:
        return settings.report_client_key.get_secret_value().encode()
    path = settings.home / _KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: of two processes starting together, one writes the key and both use it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def _checked_url(url: str) -> str:
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if len(url) > _MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReportError(f"the URL must be an http(s) address of at most {_MAX_URL} characters")
    return url


class PublicReports:
    def __init__(self, known: KnownContent, settings: ReportSettings) -> None:
        self.known = known
        self.settings = settings
        self.policy = review.ReviewPolicy.of(settings)
        self._key = _client_key(settings)

    def client_hash(self, address: str) -> str:
        return hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()

    def check_rate(self, client: str) -> None:
        """RateLimited when ``client`` has used up its window; cheap, so callers run it before
        reading an upload. :meth:`submit` checks again under a lock."""
        with self.known.db.session() as session:
            self._check_rate(session, self.client_hash(client))

    def submit(self, report: NewReport, client: str) -> Receipt:
        url = _checked_url(report.url)
        description = report.description.strip()
        if len(description) > self.settings.report_max_description_chars:
            limit = self.settings.report_max_description_chars
            raise ReportError(f"the description is limited to {limit} characters")
        if not (url or description or report.upload):
            raise ReportError("a report needs a URL, a description or a file")
        client_hash = self.client_hash(client)
        self.check_rate(client)
        stored, result, matches = self._examine(report.upload)
        reference = new_reference()
        with self.known.db.session() as session:
            self._lock_client(session, client_hash)
            self._check_rate(session, client_hash)
            new = self._new_alert(reference, url, description, stored, result, matches, session)
            alert, _ = review.create_alert(session, new, weights=self.policy.weights, actor=ACTOR)
            row = PublicReport(
                reference=reference,
                url=url,
                description=description,
                media_path=stored.name if stored else "",
                client_hash=client_hash,
                alert_id=alert.id,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            detail = {"reference": reference, "alert_id": alert.id, "upload": stored is not None}
            audit.record(session, ACTOR, "report.create", "report", row.id, detail)
            return Receipt(reference, alert.id)

    def list_reports(self, limit: int = 50, before: int | None = None) -> list[PublicReport]:
        query = select(PublicReport).order_by(PublicReport.id.desc()).limit(limit)
        if before is not None:
            query = query.where(PublicReport.id < before)
        with self.known.db.session() as session:
            rows = list(session.scalars(query))
            session.expunge_all()
            return rows

    def _window_start(self) -> Any:
        return utcnow() - timedelta(seconds=self.settings.report_rate_window_seconds)

    def _check_rate(self, session: Session, client_hash: str) -> None:
        since = self._window_start()
        recent = select(func.count(), func.min(PublicReport.created_at)).where(
            PublicReport.client_hash == client_hash, PublicReport.created_at > since
        )
        count, oldest = session.execute(recent).one()
        if count >= self.settings.report_rate_limit:
            reopens = oldest - since
            raise RateLimited(max(1, int(reopens.total_seconds()) + 1))

    @staticmethod
    def _lock_client(session: Session, client_hash: str) -> None:
        # Two reports from one client at once must not both pass the count on PostgreSQL; SQLite
        # lets one writer in at a time already.
        if session.get_bind().dialect.name == "postgresql":
            key = int.from_bytes(bytes.fromhex(client_hash[:16]), "big", signed=True)
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def _examine(
        self, upload: Path | None
    ) -> tuple[evidence.StoredFile | None, HashResult | None, MatchReport]:
        """Keep the upload and match it; a file that is not media is kept all the same."""
        if upload is None:
            return None, None, MatchReport()
        stored = evidence.store(self.settings.home, upload)
        result, matches = self.known.match(upload)
        return stored, result, matches

    def _new_alert(
        self,
        reference: str,
        url: str,
        description: str,
        stored: evidence.StoredFile | None,
        result: HashResult | None,
        matches: MatchReport,
        session: Session,
    ) -> review.NewAlert:
        severity, likelihood = self.settings.report_severity, 0.5
        names = {m.bank for m in matches.matches}
        banks = {b.name: b for b in session.scalars(select(Bank).where(Bank.name.in_(names)))}
        for match in matches.matches:
            bank = banks[match.bank]
            severity = max(severity, bank.severity)
            likelihood = max(likelihood, review.match_likelihood(match, bank, self.policy))
        hashed = result is not None and result.ok
        kind: review.ContentKind = result.kind if hashed and result and result.kind else "text"
        return review.NewAlert(
            dedupe_key=f"report:{reference}",
            source="report",
            content_kind=kind,
            content_ref=reference,
            url=url,
            text=description,
            signals=result.as_json()["signals"] if hashed and result else [],  # type: ignore[arg-type]
            matches=[m.as_json() for m in matches.matches],
            evidence=[_upload_evidence(stored, result)] if stored else [],
            explanation=_explain(reference, stored, result, matches),
            score=likelihood,
            severity=severity,
            likelihood=likelihood,
        )


def _upload_evidence(stored: evidence.StoredFile, result: HashResult | None) -> dict[str, Any]:
    return {
        "type": "upload",
        "name": stored.name,
        "media_type": stored.media_type,
        "kind": result.kind if result is not None and result.ok else None,
        "size": stored.size,
        "sha256": stored.sha256,
        "md5": stored.md5,
    }


def _explain(
    reference: str,
    stored: evidence.StoredFile | None,
    result: HashResult | None,
    matches: MatchReport,
) -> str:
    parts = [f"Public report {reference}"]
    if stored is not None and result is not None and not result.ok and result.error:
        parts.append(f"the upload is not hashable media ({result.error.reason})")
    if matches.matches:
        banks = sorted({m.bank for m in matches.matches})
        parts.append(f"the upload matches bank(s) {', '.join(banks)}")
    elif stored is not None and result is not None and result.ok:
        parts.append("the upload matches no bank")
    if matches.benign:
        parts.append("a known-benign bank matched too")
    return "; ".join(parts)
