"""Retrospective face search: probe media from an incident against approved watchlists.

A search belongs to a case and names the offence and why the search is necessary; it runs only
against approved, in-date watchlists (:func:`vigil.faces.watchlists.searchable`). Each face found
in the probe media is compared with the watchlists' templates; only faces with a candidate at or
above the operating threshold leave a trace — a :class:`FaceCandidate` per candidate, with the
probe face's crop sealed — and go to two-person review (:mod:`vigil.faces.review`). A face that
matches no one is dropped where it was found: no crop, no template, no thumbnail, only the count.

Probe media may be kept, sealed, for ``faces_probe_retention_days`` (to re-check a candidate
against the original) and is purged after that by :func:`purge_probe_media`.

A search runs inside its request (:meth:`FaceSearcher.search`), or is checked and stored
``queued`` with its media sealed (:meth:`FaceSearcher.queue`) and run later by a worker
(:meth:`FaceSearcher.run`, :mod:`vigil.faces.queue`) acting as the person who asked for it.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil import audit
from vigil.accounts import Principal
from vigil.accounts.users import active_roles
from vigil.faces.engine import FaceEngine, decode_image
from vigil.faces.index import TemplateIndex, build_index
from vigil.faces.probes import Probe, probes_from_image
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import Vault
from vigil.faces.video import FrameSampler, VideoError, probes_from_video
from vigil.faces.watchlists import MIN_REASON_CHARS, expire_due, jpeg, require, searchable
from vigil.review import Conflict, NotAllowed, NotFound, ReviewError, get_case
from vigil.review.alerts import updated_rows
from vigil.store import ApiToken, Database
from vigil.store.models import (
    FaceCandidate,
    FaceSearch,
    UserAccount,
    Watchlist,
    WatchlistEntry,
    WatchlistImage,
    utcnow,
)

SearchState = Literal["queued", "running", "done", "failed"]
#: A search in one of these states may still end (run, or fail); any other is over.
_OPEN: tuple[SearchState, ...] = ("queued", "running")


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
        _check(principal, request, media)
        with self.db.session() as session:
            expire_due(session)
        with self._lock, self.db.session() as session:
            _open_case(session, request.case_id)
            watchlists = searchable(session, request.watchlists, self.engine.model)
            gallery = self._gallery(session, watchlists)
            record = self._record(session, principal, request, watchlists, media, "done")
            outcome = SearchOutcome(record.id)
            for item in media:
                result, hits = self._search_media(gallery, item, record.threshold)
                outcome.media.append(result)
                outcome.candidates.extend(_store(session, record.id, hits))
            self._keep_probe_media(record, media)
            record.summary = _summary(outcome)
            _audit_done(session, principal.actor, outcome)
            return outcome

    def queue(
        self, principal: Principal, request: SearchRequest, media: Sequence[ProbeMedia]
    ) -> int:
        """Check a search as :meth:`search` does and store it ``queued``, its media sealed
        where :meth:`run` reads it; returns its id, for the caller to put on the bus.

        A file that is neither an image nor a video is refused here, failing the request,
        where :meth:`search` reports it in the outcome: nobody waits on a queued search to read
        that report, and the sender can still fix the upload."""
        _check(principal, request, media)
        for item in media:
            _check_readable(item, self.settings)
        with self.db.session() as session:
            expire_due(session)
        with self.db.session() as session:
            _open_case(session, request.case_id)
            watchlists = searchable(session, request.watchlists, self.engine.model)
            record = self._record(session, principal, request, watchlists, media, "queued")
            # The worker names probe faces after the files, as the search in a request does.
            record.summary = {"media": [{"name": item.name} for item in media]}
            # Kept whatever the retention, with no purge date until the search ends: the
            # housekeeping must not take the media from under a search still waiting for it.
            record.probe_dir = str(self._seal_media(record.id, media))
            return record.id

    def run(self, search_id: int) -> SearchState:
        """Run a queued search as the person who asked for it; returns its state afterwards.

        A search already over is left as it is (a message delivered again). One left
        ``running`` by a worker that died is run again from scratch: candidates are written
        only in the transaction that ends a search, so a run cut short left none. A rule that
        forbids the search now (the requester's rights, a watchlist no longer approved or in
        date, a closed case) fails it with the reason; any other error is raised, for the bus
        to deliver the search again."""
        with self.db.session() as session:
            expire_due(session)
        with self.db.session() as session:
            started = session.execute(
                update(FaceSearch)
                .where(FaceSearch.id == search_id, FaceSearch.state.in_(_OPEN))
                .values(state="running")
            )
            if not updated_rows(started):
                return _state_of(session, search_id)
        try:
            actor, outcome, hits = self._run(search_id)
        except ReviewError as exc:
            return self.fail(search_id, str(exc))
        with self.db.session() as session:
            ended = session.execute(
                update(FaceSearch)
                .where(FaceSearch.id == search_id, FaceSearch.state == "running")
                .values(state="done", probe_purge_at=self._purge_at(utcnow(), keep=True))
            )
            if not updated_rows(ended):
                # Another delivery of this search (its ack wait ran out) ended it first.
                return _state_of(session, search_id)
            outcome.candidates.extend(_store(session, search_id, hits))
            session.get_one(FaceSearch, search_id).summary = _summary(outcome)
            _audit_done(session, actor, outcome)
        self._purge_if_due(search_id)
        return "done"

    def fail(self, search_id: int, error: str) -> SearchState:
        """End a queued or running search as failed, with ``error``; a search already over is
        left as it is. Its probe media goes at once: it found no candidate to check it by."""
        with self.db.session() as session:
            failed = session.execute(
                update(FaceSearch)
                .where(FaceSearch.id == search_id, FaceSearch.state.in_(_OPEN))
                .values(state="failed", error=error, probe_purge_at=self._purge_at(utcnow()))
            )
            if not updated_rows(failed):
                return _state_of(session, search_id)
            audit.record(
                session,
                # The search's own: it failed on the requester's behalf.
                session.get_one(FaceSearch, search_id).requested_by,
                "face.search.failed",
                "face_search",
                search_id,
                {"error": error},
            )
        self._purge_if_due(search_id)
        return "failed"

    # ----------------------------------------------------------------------------------------

    def _run(self, search_id: int) -> tuple[str, SearchOutcome, list[_Hit]]:
        """A queued search's outcome and candidates, not yet stored; with the actor it runs as."""
        with self._lock:
            with self.db.session() as session:
                record = session.get(FaceSearch, search_id)
                if record is None:
                    raise NotFound(f"no face search {search_id}")
                principal = _requester(session, record)
                require(principal, "face:search")
                _open_case(session, record.case_id)
                # The watchlists the request was checked and audited with, each checked again:
                # one suspended or expired since must not be searched.
                watchlists = searchable(session, record.watchlists, self.engine.model)
                gallery = self._gallery(session, watchlists)
                if record.probe_dir is None:
                    raise Conflict(f"the probe media of search {search_id} has been purged")
                folder = Path(record.probe_dir)
                names = [str(item["name"]) for item in record.summary["media"]]
                threshold = record.threshold
            # Outside any transaction: searching a video can take minutes.
            outcome = SearchOutcome(search_id)
            hits: list[_Hit] = []
            # The models read files (a video is decoded as a stream): each file is opened into
            # a private scratch folder only while it is searched.
            with tempfile.TemporaryDirectory(prefix="vigil-faces-") as scratch:
                for number, name in enumerate(names, start=1):
                    path = Path(scratch) / str(number)
                    path.write_bytes(self.vault.open((folder / f"{number}.sealed").read_bytes()))
                    result, found = self._search_media(gallery, ProbeMedia(name, path), threshold)
                    path.unlink()
                    outcome.media.append(result)
                    hits.extend(found)
            return principal.actor, outcome, hits

    def _record(
        self,
        session: Session,
        principal: Principal,
        request: SearchRequest,
        watchlists: list[Watchlist],
        media: Sequence[ProbeMedia],
        state: SearchState,
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
            state=state,
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
        self, gallery: _Gallery, item: ProbeMedia, threshold: float
    ) -> tuple[MediaOutcome, list[_Hit]]:
        result = MediaOutcome(item.name)
        try:
            probes = self._probes(item, result)
        except (ValueError, VideoError, OSError) as exc:
            result.error = str(exc)
            return result, []
        result.faces = len(probes)
        if not probes:
            return result, []
        templates = np.stack([probe.face.embedding for probe in probes])
        found = gallery.index.search(templates, self.settings.faces_candidates, threshold)
        hits: list[_Hit] = []
        for number, (probe, matches) in enumerate(zip(probes, found, strict=True), start=1):
            if not matches:
                continue  # matched no one: nothing of this face is kept
            result.faces_with_candidates += 1
            face = _ProbeFace(f"{item.name}#{number}", probe, self.vault.seal(jpeg(probe.crop)))
            for rank, (image_id, score) in enumerate(matches, start=1):
                hits.append(_Hit(face, gallery.items[image_id], rank, float(score)))
        return result, hits

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
        record.probe_dir = str(self._seal_media(record.id, media))
        record.probe_purge_at = utcnow() + timedelta(days=days)

    def _seal_media(self, search_id: int, media: Sequence[ProbeMedia]) -> Path:
        folder = probe_media_dir(self.settings) / str(search_id)
        folder.mkdir(parents=True, exist_ok=True)
        for number, item in enumerate(media, start=1):
            (folder / f"{number}.sealed").write_bytes(self.vault.seal(item.path.read_bytes()))
        return folder

    def _purge_at(self, now: datetime, keep: bool = False) -> datetime:
        """When a queued search's media goes once it has ended: after the retention if it is
        ``keep``-worthy (a search that ran), else at once."""
        return now + timedelta(days=self.settings.faces_probe_retention_days) if keep else now

    def _purge_if_due(self, search_id: int) -> None:
        # A worker that dies before this leaves the purge to the housekeeping: the date is set.
        with self.db.session() as session:
            purge_probe_media(session, search_id=search_id)


@dataclass(frozen=True)
class _ProbeFace:
    """A probe face that has candidates: its name in the search and its sealed crop."""

    name: str
    probe: Probe
    sealed_crop: bytes


@dataclass(frozen=True)
class _Hit:
    """A candidate found and not yet stored."""

    face: _ProbeFace
    item: _GalleryItem
    rank: int
    score: float


def _check(principal: Principal, request: SearchRequest, media: Sequence[ProbeMedia]) -> None:
    require(principal, "face:search")
    request.check()
    if not media:
        raise ReviewError("a face search needs at least one image or video")


def _open_case(session: Session, case_id: int) -> None:
    case = get_case(session, case_id)
    if case.status != "open":
        raise Conflict(f"case {case.id} is {case.status}")


def _check_readable(item: ProbeMedia, settings: FacesSettings) -> None:
    """Refuse a file the search could not read, judged from an image's pixels or a video's
    header and first frame: cheap next to finding the faces in it."""
    try:
        if _is_image(item.path):
            decode_image(item.path.read_bytes(), settings.max_image_pixels)
            return
        sampler = FrameSampler(
            item.path,
            fps=settings.faces_video_fps,
            max_seconds=settings.max_video_seconds,
            max_pixels=settings.max_image_pixels,
        )
        # One frame is enough; the sampler's generator, dropped with the loop, closes the file.
        for _frame in sampler:
            break
    except VideoError as exc:
        raise ReviewError(f"{item.name} is not a readable image or video ({exc.reason})") from None
    except (ValueError, OSError) as exc:
        raise ReviewError(f"{item.name}: {exc}") from None


def _requester(session: Session, record: FaceSearch) -> Principal:
    """The person who asked for ``record``, as they stand now: with their roles of today (none
    once disabled) and, if they asked with a token, through that token (not once disabled)."""
    user = session.get(UserAccount, record.requester_id) if record.requester_id else None
    if user is None:
        raise NotAllowed(f"the account that requested search {record.id} is gone")
    kind, _, name = record.requested_by.partition(":")
    if kind != "token":
        return Principal(user.id, user.username, active_roles(user))
    token = session.scalar(
        select(ApiToken).where(ApiToken.name == name, ApiToken.user_id == user.id)
    )
    if token is None or token.disabled:
        raise NotAllowed(f"the token {name!r} that requested search {record.id} is disabled")
    return Principal(user.id, user.username, active_roles(user, token.role), token=name)


def _state_of(session: Session, search_id: int) -> SearchState:
    state = session.scalar(select(FaceSearch.state).where(FaceSearch.id == search_id))
    if state is None:
        raise NotFound(f"no face search {search_id}")
    return cast(SearchState, state)


def _store(session: Session, search_id: int, hits: Sequence[_Hit]) -> list[int]:
    candidates = [_candidate(search_id, hit) for hit in hits]
    session.add_all(candidates)
    session.flush()
    return [candidate.id for candidate in candidates]


def _candidate(search_id: int, hit: _Hit) -> FaceCandidate:
    return FaceCandidate(
        search_id=search_id,
        probe=hit.face.name,
        probe_crop=hit.face.sealed_crop,
        frame_time=hit.face.probe.frame_time,
        rank=hit.rank,
        score=hit.score,
        entry_id=hit.item.entry_id,
        image_id=hit.item.image_id,
        watchlist=hit.item.watchlist,
        person_ref=hit.item.person_ref,
        display_name=hit.item.display_name,
        status="pending_operator",
    )


def _audit_done(session: Session, actor: str, outcome: SearchOutcome) -> None:
    audit.record(
        session,
        actor,
        "face.search.done",
        "face_search",
        outcome.search_id,
        {"faces": outcome.faces, "candidates": len(outcome.candidates)},
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
    return settings.faces_probe_dir or settings.home / "faces" / "probes"


def purge_probe_media(
    session: Session, actor: str = "system:faces", search_id: int | None = None
) -> int:
    """Delete the kept probe media of searches past their retention (of the one search
    ``search_id`` only, if given); returns how many."""
    now = utcnow()
    query = select(FaceSearch).where(
        FaceSearch.probe_purge_at <= now, FaceSearch.probe_purged_at.is_(None)
    )
    if search_id is not None:
        query = query.where(FaceSearch.id == search_id)
    due = list(session.scalars(query))
    for record in due:
        if record.probe_dir:
            shutil.rmtree(record.probe_dir, ignore_errors=True)
        record.probe_dir = None
        record.probe_purged_at = now
        audit.record(session, actor, "face.probe.purge", "face_search", record.id, {})
    return len(due)
