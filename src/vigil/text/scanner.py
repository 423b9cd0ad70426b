"""The post pipeline: normalize → language → lexicon → classify (two stages) → attachments →
campaigns → triage → store and alert, one batch per transaction.

Exactly once in effect: a batch's posts, their alerts, their campaign's queue item and the
source's checkpoint commit together, and a post already stored (``platform:id``) is skipped, so
a batch delivered twice (a restart before the checkpoint moved, a broker redelivery, a client
retrying ``POST /v1/posts``) creates nothing twice.

Campaigns: a post that joins a cluster of near-duplicates updates the cluster's risk (its worst
member's severity and likelihood, the members' summed reach, its velocity). Once a cluster holds
``text_campaign_min_posts`` posts and one of them is flagged, it becomes **one** queue item
(``text:campaign:<id>``) that grows with the campaign, instead of one alert per copy. The
tracker's state is rebuilt from the stored signatures when a scanner starts.

Hooks (:mod:`vigil.text.hooks`): after a batch's posts and alerts are in the session, every hook
sees the batch's stored posts inside the same transaction (account histories and networks).

Pseudonymisation (:mod:`vigil.pseudonyms`, ``VIGIL_ACCOUNTS_PSEUDONYMISE``): account references
are replaced first, before a post is analysed, stored or alerted on.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil import review
from vigil.pseudonyms import Pseudonymiser, open_pseudonymiser
from vigil.store import Database
from vigil.store.models import IngestCheckpoint, PostRecord, utcnow
from vigil.text.attachments import AttachmentFinding, AttachmentReader
from vigil.text.campaigns import CampaignTracker, CampaignView
from vigil.text.classify import TextClassifier, TextScore
from vigil.text.hooks import PostHook, StoredPost
from vigil.text.language import detect_language
from vigil.text.lexicon import Lexicon, LexiconHit
from vigil.text.normalize import Normalized, normalize
from vigil.text.posts import Post
from vigil.text.settings import TextSettings
from vigil.text.triage import Assessment, TriagePolicy, assess

log = logging.getLogger(__name__)

ACTOR = "system:text"
#: Bank matches on an attached image outrank the text: the image is known terrorist content.
BANK_MATCH_SEVERITY = 9


@dataclass
class ScanResult:
    scanned: int = 0
    duplicates: int = 0
    alerts: int = 0
    campaign_alerts: int = 0
    full_model: int = 0
    flagged: Counter[str] = field(default_factory=Counter)
    alert_ids: dict[str, int] = field(default_factory=dict)

    def add(self, other: ScanResult) -> None:
        self.scanned += other.scanned
        self.duplicates += other.duplicates
        self.alerts += other.alerts
        self.campaign_alerts += other.campaign_alerts
        self.full_model += other.full_model
        self.flagged.update(other.flagged)
        self.alert_ids.update(other.alert_ids)


@dataclass
class _CampaignRisk:
    severity: int = 0
    likelihood: float = 0.0
    label: str | None = None
    reach: int = 0


@dataclass(frozen=True)
class _Scanned:
    post: Post
    normalized: Normalized
    language: str
    hits: list[LexiconHit]
    score: TextScore
    findings: list[AttachmentFinding]
    assessment: Assessment
    campaign: CampaignView | None
    signature: bytes | None
    at: datetime


class PostScanner:
    """Scans batches of posts into the store and the review queue. Not thread-safe: one scanner
    per ingest loop (the API serialises its pushes through one)."""

    def __init__(
        self,
        db: Database,
        settings: TextSettings,
        *,
        classifier: TextClassifier | None = None,
        lexicon: Lexicon | None = None,
        attachments: AttachmentReader | None = None,
        hooks: Sequence[PostHook] = (),
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        """``pseudonymiser``: default, the one the settings configure (none when
        pseudonymisation is off), so that no caller can forget it."""
        self.db = db
        self.settings = settings
        self.classifier = classifier or TextClassifier.load(settings.text_model)
        self.lexicon = lexicon or _lexicon(settings)
        self.attachments = attachments
        self.hooks = tuple(hooks)
        self.pseudonymiser = pseudonymiser or open_pseudonymiser(settings, db)
        self.policy = TriagePolicy(
            alert_labels=frozenset(settings.text_alert_labels),
            lexicon_alert_weight=settings.text_lexicon_alert_weight,
        )
        self.weights = review.PriorityWeights.of(settings)
        window = timedelta(hours=settings.text_campaign_window_hours)
        self.tracker = CampaignTracker(window=window)
        self._risk: dict[str, _CampaignRisk] = {}
        self._restore_campaigns(window)

    def checkpoint(self, source: str) -> int:
        """Where ``source`` stopped last time (0 when never seen)."""
        with self.db.session() as session:
            row = session.get(IngestCheckpoint, source)
            return row.position if row else 0

    def scan(
        self, posts: Sequence[Post], *, source: str | None = None, position: int | None = None
    ) -> ScanResult:
        """Scan ``posts`` and commit them, their alerts and (when given) ``source``'s new
        ``position`` in one transaction."""
        result = ScanResult()
        if self.pseudonymiser is not None:
            # Before the batch's transaction: the originals are sealed (and committed, perhaps
            # in another database) before anything that names their pseudonyms is stored.
            posts = _pseudonymised(self.pseudonymiser, posts)
        with self.db.session() as session:
            fresh = self._unseen(session, posts)
            result.duplicates = len(posts) - len(fresh)
            stored = [self._store(session, item, result) for item in self._analyse(fresh)]
            if self.hooks and stored:
                session.flush()
                for hook in self.hooks:
                    hook.stored(session, stored)
            if source is not None and position is not None:
                _save_checkpoint(session, source, position)
        return result

    def _unseen(self, session: Session, posts: Sequence[Post]) -> list[Post]:
        keys = {post.key for post in posts}
        known: set[str] = set()
        ordered = sorted(keys)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            known.update(session.scalars(select(PostRecord.key).where(PostRecord.key.in_(chunk))))
        fresh, taken = [], set()
        for post in posts:
            if post.key not in known and post.key not in taken:
                taken.add(post.key)
                fresh.append(post)
        return fresh

    def _analyse(self, posts: Sequence[Post]) -> list[_Scanned]:
        normalized = [normalize(post.text) for post in posts]
        languages = [
            post.language or detect_language(norm.text)[0]
            for post, norm in zip(posts, normalized, strict=True)
        ]
        findings = [self._read_attachments(post) for post in posts]
        # An image's text is part of the post: "read the caption" is how memes evade text filters.
        texts = [
            " ".join([norm.text, *(normalize(f.text).text for f in found if f.text)])
            for norm, found in zip(normalized, findings, strict=True)
        ]
        scores = self.classifier.predict(texts, languages)
        scanned = []
        for post, norm, language, text, score, found in zip(
            posts, normalized, languages, texts, scores, findings, strict=True
        ):
            hits = self.lexicon.match(text)
            assessment = _with_bank_matches(assess(text, score, hits, self.policy), found)
            at = _utc(post.created_at) if post.created_at else utcnow()
            campaign = self.tracker.add(post.key, norm.text, post.author_ref, at)
            scanned.append(
                _Scanned(
                    post=post,
                    normalized=norm,
                    language=language,
                    hits=hits,
                    score=score,
                    findings=found,
                    assessment=assessment,
                    campaign=campaign,
                    signature=self.tracker.signature(norm.text),
                    at=at,
                )
            )
        return scanned

    def _read_attachments(self, post: Post) -> list[AttachmentFinding]:
        if self.attachments is None or not post.attachments:
            return []
        return self.attachments.read(post)

    def _store(self, session: Session, item: _Scanned, result: ScanResult) -> StoredPost:
        post, assessment = item.post, item.assessment
        record = _record(item)
        session.add(record)
        result.scanned += 1
        result.full_model += item.score.stage == "full"
        if assessment.label:
            result.flagged[assessment.label] += 1
        campaign_alert = self._campaign_alert(session, item, result)
        if assessment.alert and campaign_alert is None:
            alert, created = review.create_alert(
                session, _post_alert(item), weights=self.weights, actor=ACTOR
            )
            result.alerts += created
            result.alert_ids[post.key] = alert.id
            record.alert_id = alert.id
        elif campaign_alert is not None:
            record.alert_id = campaign_alert
        return _stored(item, record.alert_id)

    def _campaign_alert(self, session: Session, item: _Scanned, result: ScanResult) -> int | None:
        """The campaign's queue item, made or grown by this post; None when the post is not
        (yet) part of a campaign worth a queue item."""
        view = item.campaign
        if view is None:
            return None
        risk = self._risk.setdefault(view.id, _CampaignRisk())
        _grow(risk, item)
        if risk.label is None or view.size < self.settings.text_campaign_min_posts:
            return None
        new = _campaign_alert(view, risk, item)
        alert, created = review.create_alert(session, new, weights=self.weights, actor=ACTOR)
        if created:
            result.campaign_alerts += 1
        else:
            update = review.DetectionUpdate(
                severity=risk.severity,
                likelihood=risk.likelihood,
                reach=risk.reach,
                velocity=view.velocity_per_hour,
                explanation=new.explanation,
                evidence=[_member(item)],
            )
            review.update_detection(session, alert.id, update, weights=self.weights, actor=ACTOR)
        result.alert_ids[f"campaign:{view.id}"] = alert.id
        return alert.id

    def _restore_campaigns(self, window: timedelta) -> None:
        since = utcnow() - window
        with self.db.session() as session:
            rows = session.execute(
                select(
                    PostRecord.key,
                    PostRecord.signature,
                    PostRecord.author_ref,
                    PostRecord.created_at,
                    PostRecord.scanned_at,
                    PostRecord.campaign_id,
                    PostRecord.severity,
                    PostRecord.flagged,
                    PostRecord.scores,
                    PostRecord.reach,
                )
                .where(PostRecord.scanned_at >= since, PostRecord.signature.is_not(None))
                .order_by(PostRecord.id)
            )
            for row in rows:
                assert row.signature is not None
                self.tracker.restore(
                    row.key, row.signature, row.author_ref, row.created_at or row.scanned_at
                )
                if row.campaign_id is not None:
                    risk = self._risk.setdefault(row.campaign_id, _CampaignRisk())
                    risk.reach += row.reach
                    label = row.scores.get("label")
                    if label and row.severity > risk.severity:
                        risk.severity, risk.label = row.severity, label
                        risk.likelihood = float(row.scores.get("likelihood", 0.0))


def _lexicon(settings: TextSettings) -> Lexicon:
    default = Lexicon.default()
    if settings.text_lexicon is None:
        return default
    return default.merged(Lexicon.load(settings.text_lexicon))


def _banks(findings: list[AttachmentFinding]) -> list[str]:
    return sorted({str(getattr(m, "bank", "")) for f in findings for m in f.matches})


def _with_bank_matches(assessment: Assessment, findings: list[AttachmentFinding]) -> Assessment:
    banks = _banks(findings)
    if not banks:
        return assessment
    return Assessment(
        label=assessment.label or "known_content",
        severity=max(assessment.severity, BANK_MATCH_SEVERITY),
        likelihood=max(assessment.likelihood, 0.99),
        alert=True,
        explanation=" — ".join(
            part
            for part in (
                f"attached image matches bank(s) {', '.join(banks)}",
                assessment.explanation,
            )
            if part
        ),
        signals=[
            *assessment.signals,
            *({"type": "attachment_match", "bank": bank} for bank in banks),
        ],
    )


def _utc(at: datetime) -> datetime:
    # A timestamp without a zone is taken as UTC, as the store does.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _pseudonymised(pseudonymiser: Pseudonymiser, posts: Sequence[Post]) -> list[Post]:
    """``posts`` with their author and mentions replaced by pseudonyms, wherever they appear:
    the fields, an "@handle" in the text (X and Telegram write mentions into it), and a URL
    naming the author (dropped: the post is still found by platform and id)."""
    refs: dict[str, set[str]] = {}
    for post in posts:
        refs.setdefault(post.platform, set()).update(
            ref for ref in (post.author_ref, *post.mentions) if ref
        )
    names = {
        platform: pseudonymiser.pseudonyms(platform, sorted(found))
        for platform, found in refs.items()
    }
    out = []
    for post in posts:
        mapping = names.get(post.platform, {})
        if not mapping:
            out.append(post)
            continue
        out.append(
            post.model_copy(
                update={
                    "author_ref": mapping.get(post.author_ref, post.author_ref),
                    "mentions": tuple(mapping.get(ref, ref) for ref in post.mentions),
                    "text": _handles_replaced(post.text, mapping, post),
                    "url": "" if _names(post.url, post.author_ref) else post.url,
                }
            )
        )
    return out


def _names(url: str, ref: str) -> bool:
    """Whether ``url``'s path has ``ref`` as one of its segments (x.com/alice/status/1)."""
    return bool(ref) and ref.lower() in urlsplit(url).path.lower().split("/")


def _handles_replaced(text: str, mapping: dict[str, str], post: Post) -> str:
    own = [ref for ref in (post.author_ref, *post.mentions) if ref]
    if not own or "@" not in text:
        return text
    # Handles are case-insensitive on the platforms that write them; longest first, so that
    # "@ab" does not eat the start of "@abc".
    lowered = {ref.lower(): mapping[ref] for ref in own}
    pattern = re.compile(
        "@("
        + "|".join(re.escape(ref) for ref in sorted(lowered, key=len, reverse=True))
        + r")(?!\w)",
        re.IGNORECASE,
    )
    return pattern.sub(lambda match: "@" + lowered[match.group(1).lower()], text)


def _stored(item: _Scanned, alert_id: int | None) -> StoredPost:
    post, assessment = item.post, item.assessment
    return StoredPost(
        key=post.key,
        platform=post.platform,
        author_ref=post.author_ref,
        at=item.at,
        label=assessment.label,
        severity=assessment.severity,
        likelihood=assessment.likelihood,
        flagged=tuple(item.score.flagged),
        banks=tuple(_banks(item.findings)),
        campaign_id=item.campaign.id if item.campaign else None,
        in_reply_to=post.in_reply_to,
        repost_of=post.repost_of,
        mentions=post.mentions,
        alert_id=alert_id,
        reach=post.reach.audience,
    )


def _record(item: _Scanned) -> PostRecord:
    post, assessment = item.post, item.assessment
    return PostRecord(
        key=post.key,
        platform=post.platform,
        post_id=post.id,
        author_ref=post.author_ref,
        text=post.text,
        language=item.language,
        url=post.url,
        reach=post.reach.audience,
        created_at=post.created_at,
        scanned_at=utcnow(),
        scores={
            "probabilities": item.score.probabilities,
            "stage": item.score.stage,
            "label": assessment.label,
            "likelihood": assessment.likelihood,
            "evasions": list(item.normalized.evasions),
            "attachment_text": [f.text for f in item.findings if f.text],
        },
        flagged=list(item.score.flagged),
        severity=assessment.severity,
        lexicon=sorted({hit.entry.id for hit in item.hits}),
        links={
            key: value
            for key, value in (
                ("in_reply_to", post.in_reply_to),
                ("repost_of", post.repost_of),
                ("mentions", list(post.mentions)),
            )
            if value
        },
        campaign_id=item.campaign.id if item.campaign else None,
        signature=item.signature,
    )


def _post_alert(item: _Scanned) -> review.NewAlert:
    post, assessment = item.post, item.assessment
    return review.NewAlert(
        dedupe_key=f"text:post:{post.key}"[:128],
        source="text",
        content_kind="text",
        content_ref=post.key,
        platform=post.platform,
        author_ref=post.author_ref,
        url=post.url,
        text=post.text,
        signals=assessment.signals,
        explanation=assessment.explanation,
        score=assessment.likelihood,
        severity=assessment.severity,
        likelihood=assessment.likelihood,
        reach=post.reach.audience,
        occurred_at=post.created_at,
    )


def _grow(risk: _CampaignRisk, item: _Scanned) -> None:
    risk.reach += item.post.reach.audience
    assessment = item.assessment
    if assessment.label and (assessment.severity, assessment.likelihood) > (
        risk.severity,
        risk.likelihood,
    ):
        risk.severity, risk.likelihood, risk.label = (
            assessment.severity,
            assessment.likelihood,
            assessment.label,
        )


def _campaign_alert(view: CampaignView, risk: _CampaignRisk, item: _Scanned) -> review.NewAlert:
    return review.NewAlert(
        dedupe_key=f"text:campaign:{view.id}"[:128],
        source="text",
        content_kind="text",
        content_ref=f"campaign:{view.id}",
        platform=item.post.platform,
        author_ref=view.first_author_ref,
        url=item.post.url,
        text=item.post.text,
        signals=[
            {
                "type": "campaign",
                "id": view.id,
                "size": view.size,
                "accounts": view.accounts,
                "first_seen": view.first_seen.isoformat(),
                "last_seen": view.last_seen.isoformat(),
                "velocity_per_hour": round(view.velocity_per_hour, 3),
                "first_post": view.first_post_key,
                "sample": list(view.sample_keys),
            },
            *item.assessment.signals,
        ],
        evidence=[_member(item)],
        explanation=_campaign_explanation(view, risk),
        score=risk.likelihood,
        severity=risk.severity,
        likelihood=risk.likelihood,
        reach=risk.reach,
        velocity=view.velocity_per_hour,
        occurred_at=view.first_seen,
    )


def _campaign_explanation(view: CampaignView, risk: _CampaignRisk) -> str:
    label = (risk.label or "").replace("_", " ")
    return (
        f"campaign of {view.size} near-duplicate posts from {view.accounts} account(s), "
        f"{view.velocity_per_hour:.1f} posts/hour, first posted by {view.first_author_ref or '?'}"
        f" — worst member: {label} (p={risk.likelihood:.2f})"
    )


def _member(item: _Scanned) -> dict[str, object]:
    post = item.post
    return {
        "type": "campaign_member",
        "post": post.key,
        "author_ref": post.author_ref,
        "url": post.url,
        "at": item.at.isoformat(),
        "label": item.assessment.label,
    }


def _save_checkpoint(session: Session, source: str, position: int) -> None:
    row = session.get(IngestCheckpoint, source)
    if row is None:
        session.add(IngestCheckpoint(source=source, position=position))
    else:
        row.position = position
