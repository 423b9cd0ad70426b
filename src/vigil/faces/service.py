"""One object for the API, the CLI and the console: the face engine, the vault and the
searcher, made when first needed (loading dlib's models takes a second; a server that never
searches faces never pays it), and the housekeeping that expiry and retention need."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vigil.accounts import Principal
from vigil.faces.engine import FaceEngine, read_enrollment_photo
from vigil.faces.search import (
    FaceSearcher,
    ProbeMedia,
    SearchOutcome,
    SearchRequest,
    purge_probe_media,
)
from vigil.faces.settings import FacesSettings
from vigil.faces.vault import Vault
from vigil.faces.watchlists import ImageSource, enroll, expire_due, get_entry
from vigil.store import Database
from vigil.store.models import WatchlistImage


@dataclass(frozen=True)
class Housekeeping:
    expired_watchlists: list[str]
    purged_searches: int


class FaceService:
    def __init__(self, db: Database, settings: FacesSettings) -> None:
        self.db = db
        self.settings = settings
        self._lock = threading.Lock()
        self._engine: FaceEngine | None = None
        self._vault: Vault | None = None
        self._searcher: FaceSearcher | None = None

    @property
    def engine(self) -> FaceEngine:
        with self._lock:
            if self._engine is None:
                self._engine = FaceEngine.from_settings(self.settings)
            return self._engine

    @property
    def vault(self) -> Vault:
        with self._lock:
            if self._vault is None:
                self._vault = Vault.of(self.settings)
            return self._vault

    @property
    def searcher(self) -> FaceSearcher:
        engine, vault = self.engine, self.vault
        with self._lock:
            if self._searcher is None:
                self._searcher = FaceSearcher(self.db, self.settings, engine, vault)
            return self._searcher

    def enroll(
        self,
        session: Session,
        principal: Principal,
        watchlist: str | int,
        person_ref: str,
        data: bytes,
        origin: ImageSource,
    ) -> WatchlistImage:
        """Enroll one image (bytes of a photo) of ``person_ref`` on ``watchlist``; raises
        EnrollmentRejected (with its reason, ``unreadable`` included) for an unfit photo."""
        vault, engine = self.vault, self.engine  # a missing key fails before anything is read
        entry = get_entry(session, watchlist, person_ref)
        rgb = read_enrollment_photo(data, self.settings.max_image_pixels)
        return enroll(session, principal, entry, rgb, data, origin, engine, vault)

    def search(
        self, principal: Principal, request: SearchRequest, media: Sequence[ProbeMedia]
    ) -> SearchOutcome:
        return self.searcher.search(principal, request, media)

    def housekeeping(self) -> Housekeeping:
        """Expire watchlists past their expiry (purging templates) and purge probe media past
        its retention."""
        with self.db.session() as session:
            expired = expire_due(session)
            purged = purge_probe_media(session)
        return Housekeeping(expired, purged)
