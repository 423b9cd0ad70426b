"""Retrospective face search: probe media from an incident against approved watchlists.

A search belongs to a case and names the offence and why the search is necessary; it runs only
against approved, in-date watchlists (:func:`vigil.faces.watchlists.searchable`). Each face found
in the probe media is compared with the watchlists' templates; only faces with a candidate at or
above the operating threshold leave a trace — a :class:`FaceCandidate` per candidate, with the
probe face's crop sealed — and go to two-person review (:mod:`vigil.faces.review`). A face that
matches no one is dropped where it was found: no crop, no template, no thumbnail, only the count.

Probe media may be kept, sealed, for ``faces_probe_retention_days`` (to re-check a candidate
against the original) and is purged after that by :func:`purge_probe_media`.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil import audit
from vigil.accounts import Principal
from vigil.faces.engine import FaceEngine, decode_image
from vigil.faces.index import TemplateIndex, build_index
from vigil.faces.probes import Probe, probes_from_image
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import Vault
from vigil.faces.video import VideoError, probes_from_video
from vigil.faces.watchlists import MIN_REASON_CHARS, expire_due, jpeg, require, searchable
from vigil.review import Conflict, ReviewError, get_case
from vigil.store import Database
from vigil.store.models import (
    FaceCandidate,
    FaceSearch,
    Watchlist,
    WatchlistEntry,
    WatchlistImage,
    utcnow,
)


@dataclass(frozen=True)
class SearchRequest:
    case_id: int
    offence_ref: str
    justification: str
    #: Watchlist names; empty: every approved, in-date watchlist.
    watchlists: tuple[str, ...] = ()

    def check(self) -> None:
        if not self.offence_ref.strip():
            raise ReviewError("a face search needs an offence reference")
        if len(self.justification.strip()) < MIN_REASON_CHARS:
            raise ReviewError(
                f"justify the search in at least {MIN_REASON_CHARS} characters: why it is "
                "necessary and proportionate"
            )


@dataclass(frozen=True)
class ProbeMedia:
    """An image or video file to search, and the name it is recorded under."""

    name: str
    path: Path


@dataclass(frozen=True)
class _GalleryItem:
    image_id: int
    entry_id: int
    watchlist: str
    person_ref: str
    display_name: str


@dataclass
class _Gallery:
    """The decrypted templates of one set of watchlists, indexed; rebuilt when that set's
    contents or approvals change."""

    version: tuple[Any, ...]
    index: TemplateIndex
    items: dict[int, _GalleryItem]


@dataclass
class MediaOutcome:
    name: str
    kind: str = ""
    faces: int = 0
    faces_with_candidates: int = 0
    frames_sampled: int = 0
    seconds: float = 0.0
    #: What a damaged video let through ("frames stop at 1.8 s of 4.0").
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class SearchOutcome:
    search_id: int
    candidates: list[int] = field(default_factory=list)
    media: list[MediaOutcome] = field(default_factory=list)

    @property
    def faces(self) -> int:
        return sum(item.faces for item in self.media)


class FaceSearcher:
    """Runs searches; holds the galleries (decrypted templates, in memory only) between them.
    Thread-safe: searches are serialised (the models use the cores anyway)."""

    def __init__(
        self,
        db: Database,
        settings: FacesSettings,
        engine: FaceEngine | None = None,
        vault: Vault | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.vault = vault or Vault.of(settings)
        self.engine = engine or FaceEngine.from_settings(settings)
        self._galleries: dict[tuple[int, ...], _Gallery] = {}
        self._lock = threading.Lock()

    def search(
        self, principal: Principal, request: SearchRequest, media: Sequence[ProbeMedia]
    ) -> SearchOutcome:
        require(principal, "face:search")
        request.check()
        if not media:
            raise ReviewError("a face search needs at least one image or video")
        with self.db.session() as session:
            expire_due(session)
        with self._lock, self.db.session() as session:
            case = get_case(session, request.case_id)
            if case.status != "open":
                raise Conflict(f"case {case.id} is {case.status}")
            watchlists = searchable(session, request.watchlists, self.engine.model)
            gallery = self._gallery(session, watchlists)
            record = self._record(session, principal, request, watchlists, media)
            outcome = SearchOutcome(record.id)
            for item in media:
                outcome.media.append(self._search_media(session, record, gallery, item, outcome))
            self._keep_probe_media(record, media)
            record.summary = _summary(outcome)
            audit.record(
                session,
                principal.actor,
                "face.search.done",
                "face_search",
                record.id,
                {"faces": outcome.faces, "candidates": len(outcome.candidates)},
            )
            return outcome

    # ----------------------------------------------------------------------------------------

    def _record(
        self,
        session: Session,
        principal: Principal,
        request: SearchRequest,
        watchlists: list[Watchlist],
        media: Sequence[ProbeMedia],
    ) -> FaceSearch:
        record = FaceSearch(
            case_id=request.case_id,
            offence_ref=request.offence_ref,
            justification=request.justification,
            watchlists=[w.name for w in watchlists],
            model=self.engine.model,
            threshold=self.engine.operating_point.threshold,
            requested_by=principal.actor,
            requester_id=principal.user_id,
        )
        session.add(record)
        session.flush()
        audit.searched(
            session,
            principal.actor,
            "faces",
            search_id=record.id,
            case_id=request.case_id,
            offence_ref=request.offence_ref,
            justification=request.justification,
            watchlists=record.watchlists,
            media=[item.name for item in media],
        )
        return record

    def _search_media(
        self,
        session: Session,
        record: FaceSearch,
        gallery: _Gallery,
        item: ProbeMedia,
        outcome: SearchOutcome,
    ) -> MediaOutcome:
        result = MediaOutcome(item.name)
        try:
            probes = self._probes(item, result)
        except (ValueError, VideoError, OSError) as exc:
            result.error = str(exc)
            return result
        result.faces = len(probes)
        if not probes:
            return result
        templates = np.stack([probe.face.embedding for probe in probes])
        found = gallery.index.search(
            templates, self.settings.faces_candidates, self.engine.operating_point.threshold
        )
        for number, (probe, hits) in enumerate(zip(probes, found, strict=True), start=1):
            if not hits:
                continue  # matched no one: nothing of this face is kept
            result.faces_with_candidates += 1
            face = _ProbeFace(f"{item.name}#{number}", probe, self.vault.seal(jpeg(probe.crop)))
            for rank, (image_id, score) in enumerate(hits, start=1):
                candidate = _candidate(record, gallery.items[image_id], face, rank, score)
                session.add(candidate)
                session.flush()
                outcome.candidates.append(candidate.id)
        return result

    def _probes(self, item: ProbeMedia, result: MediaOutcome) -> list[Probe]:
        """The faces of one file: an image if Pillow recognises it, else a video (so that each
        kind's own error, not the other's, is what the searcher reads)."""
        if _is_image(item.path):
            result.kind = "image"
            rgb = decode_image(item.path.read_bytes(), self.settings.max_image_pixels)
            return probes_from_image(rgb, self.engine)
        result.kind = "video"
        video = probes_from_video(item.path, self.engine, self.settings)
        result.frames_sampled = video.frames_sampled
        result.seconds = round(video.seconds_decoded, 3)
        result.notes = list(video.notes)
        return list(video.probes)

    def _gallery(self, session: Session, watchlists: list[Watchlist]) -> _Gallery:
        key = tuple(sorted(w.id for w in watchlists))
        rows = list(
            session.execute(
                select(WatchlistImage, WatchlistEntry, Watchlist)
                .join(WatchlistEntry, WatchlistImage.entry_id == WatchlistEntry.id)
                .join(Watchlist, WatchlistEntry.watchlist_id == Watchlist.id)
                .where(Watchlist.id.in_(key), WatchlistImage.template.is_not(None))
                .order_by(WatchlistImage.id)
            )
        )
        version = (
            tuple(row[0].id for row in rows),
            tuple((w.id, w.approved_at) for w in sorted(watchlists, key=lambda w: w.id)),
        )
        cached = self._galleries.get(key)
        if cached is not None and cached.version == version:
            return cached
        index = build_index(
            self.settings.faces_index, self.engine.embedder.dimension, self.settings.faces_exact_max
        )
        items: dict[int, _GalleryItem] = {}
        if rows:
            # The query asked for rows with a template: none is None.
            vectors = np.stack([self.vault.open_template(row[0].template or b"") for row in rows])
            index.add(np.array([row[0].id for row in rows], dtype=np.int64), vectors)
            for image, entry, watchlist in rows:
                items[image.id] = _GalleryItem(
                    image.id, entry.id, watchlist.name, entry.person_ref, entry.display_name
                )
        gallery = _Gallery(version, index, items)
        self._galleries[key] = gallery
        return gallery

    def _keep_probe_media(self, record: FaceSearch, media: Sequence[ProbeMedia]) -> None:
        days = self.settings.faces_probe_retention_days
        if days <= 0:
            return
        folder = probe_media_dir(self.settings) / str(record.id)
        folder.mkdir(parents=True, exist_ok=True)
        for number, item in enumerate(media, start=1):
            (folder / f"{number}.sealed").write_bytes(self.vault.seal(item.path.read_bytes()))
        record.probe_dir = str(folder)
        record.probe_purge_at = utcnow() + timedelta(days=days)


@dataclass(frozen=True)
class _ProbeFace:
    """A probe face that has candidates: its name in the search and its sealed crop."""

    name: str
    probe: Probe
    sealed_crop: bytes


def _candidate(
    record: FaceSearch, item: _GalleryItem, face: _ProbeFace, rank: int, score: float
) -> FaceCandidate:
    return FaceCandidate(
        search_id=record.id,
        probe=face.name,
        probe_crop=face.sealed_crop,
        frame_time=face.probe.frame_time,
        rank=rank,
        score=float(score),
        entry_id=item.entry_id,
        image_id=item.image_id,
        watchlist=item.watchlist,
        person_ref=item.person_ref,
        display_name=item.display_name,
        status="pending_operator",
    )


def _summary(outcome: SearchOutcome) -> dict[str, Any]:
    return {
        "media": [item.__dict__ for item in outcome.media],
        "faces": outcome.faces,
        "faces_with_candidates": sum(item.faces_with_candidates for item in outcome.media),
        "candidates": len(outcome.candidates),
    }


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.format is not None
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def probe_media_dir(settings: FacesSettings) -> Path:
    return settings.home / "faces" / "probes"


def purge_probe_media(session: Session, actor: str = "system:faces") -> int:
    """Delete the kept probe media of searches past their retention; returns how many."""
    now = utcnow()
    due = list(
        session.scalars(
            select(FaceSearch).where(
                FaceSearch.probe_purge_at <= now, FaceSearch.probe_purged_at.is_(None)
            )
        )
    )
    for record in due:
        if record.probe_dir:
            shutil.rmtree(record.probe_dir, ignore_errors=True)
        record.probe_dir = None
        record.probe_purged_at = now
        audit.record(session, actor, "face.probe.purge", "face_search", record.id, {})
    return len(due)
