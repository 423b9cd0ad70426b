"""Governed watchlists: who may be searched for, why, on what legal basis, until when.

A watchlist is created as a *draft* by an investigator: people (a reference and a display name)
and their images are added while it is a draft. It cannot be searched until a supervisor other
than its creator and owner *approves* it; approval freezes it (changing an approved list puts it
back to draft, to be approved again). Past its review date it is not searchable until a
supervisor approves it again with a new review date; past its expiry it is *expired* and its
templates and crops are purged. Every step is audited.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil import audit
from vigil.accounts import Permission, Principal
from vigil.faces.engine import FaceEngine
from vigil.faces.probes import face_crop
from vigil.faces.vault import Vault
from vigil.review import Conflict, NotAllowed, NotFound, ReviewError
from vigil.store.models import Watchlist, WatchlistEntry, WatchlistImage, utcnow

#: Shortest purpose, legal basis or justification accepted: a word is not a reason.
MIN_REASON_CHARS = 20


@dataclass(frozen=True)
class WatchlistTerms:
    """What a watchlist is for and how long it may live."""

    name: str
    purpose: str
    legal_basis: str
    review_at: datetime
    expires_at: datetime
    owner_id: int | None = None

    def check(self, now: datetime) -> None:
        if not self.name.strip():
            raise ReviewError("a watchlist needs a name")
        for field, value in (("purpose", self.purpose), ("legal basis", self.legal_basis)):
            if len(value.strip()) < MIN_REASON_CHARS:
                raise ReviewError(f"state the {field} in at least {MIN_REASON_CHARS} characters")
        if self.expires_at <= now:
            raise ReviewError("the expiry must be in the future")
        if not now < self.review_at <= self.expires_at:
            raise ReviewError("the review date must be in the future and not after the expiry")


def require(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise NotAllowed(f"{principal.actor} may not {permission}")


def create_watchlist(
    session: Session, principal: Principal, terms: WatchlistTerms, model: str
) -> Watchlist:
    require(principal, "face:watchlist")
    terms.check(utcnow())
    if session.scalar(select(Watchlist.id).where(Watchlist.name == terms.name)) is not None:
        raise Conflict(f"a watchlist named {terms.name!r} exists")
    watchlist = Watchlist(
        name=terms.name,
        purpose=terms.purpose,
        legal_basis=terms.legal_basis,
        review_at=terms.review_at,
        expires_at=terms.expires_at,
        owner_id=terms.owner_id if terms.owner_id is not None else principal.user_id,
        status="draft",
        model=model,
        created_by=principal.actor,
    )
    session.add(watchlist)
    session.flush()
    audit.record(
        session,
        principal.actor,
        "watchlist.create",
        "watchlist",
        watchlist.id,
        {"name": terms.name, "expires_at": terms.expires_at.isoformat()},
    )
    return watchlist


def get_watchlist(session: Session, name_or_id: str | int) -> Watchlist:
    column = Watchlist.id if isinstance(name_or_id, int) else Watchlist.name
    watchlist = session.scalar(select(Watchlist).where(column == name_or_id))
    if watchlist is None:
        raise NotFound(f"no watchlist {name_or_id!r}")
    return watchlist


def list_watchlists(session: Session) -> list[Watchlist]:
    return list(session.scalars(select(Watchlist).order_by(Watchlist.name)))


def approve_watchlist(
    session: Session, principal: Principal, name_or_id: str | int, review_at: datetime | None
) -> Watchlist:
    """A supervisor's approval: not the creator's or owner's own; a new review date when the
    old one has passed."""
    require(principal, "face:approve")
    watchlist = get_watchlist(session, name_or_id)
    now = utcnow()
    if watchlist.status == "expired" or watchlist.expires_at <= now:
        raise Conflict(f"watchlist {watchlist.name!r} has expired")
    if principal.user_id is None:
        raise NotAllowed("approval needs a person, not a token")
    if principal.actor == watchlist.created_by or principal.user_id == watchlist.owner_id:
        raise NotAllowed("a watchlist is approved by someone other than its creator and owner")
    if review_at is not None:
        if not now < review_at <= watchlist.expires_at:
            raise ReviewError("the review date must be in the future and not after the expiry")
        watchlist.review_at = review_at
    elif watchlist.review_at <= now:
        raise ReviewError("the review date has passed: approve with a new review date")
    if not _has_templates(session, watchlist.id):
        raise Conflict(f"watchlist {watchlist.name!r} has no enrolled image")
    watchlist.status = "approved"
    watchlist.approved_by = principal.user_id
    watchlist.approved_at = now
    audit.record(
        session,
        principal.actor,
        "watchlist.approve",
        "watchlist",
        watchlist.id,
        {"review_at": watchlist.review_at.isoformat()},
    )
    return watchlist


def _has_templates(session: Session, watchlist_id: int) -> bool:
    query = (
        select(WatchlistImage.id)
        .join(WatchlistEntry, WatchlistImage.entry_id == WatchlistEntry.id)
        .where(WatchlistEntry.watchlist_id == watchlist_id, WatchlistImage.template.is_not(None))
        .limit(1)
    )
    return session.scalar(query) is not None


def _editable(session: Session, principal: Principal, name_or_id: str | int) -> Watchlist:
    """The watchlist, back in draft if it was approved: its contents are about to change."""
    require(principal, "face:watchlist")
    watchlist = get_watchlist(session, name_or_id)
    if watchlist.status == "expired":
        raise Conflict(f"watchlist {watchlist.name!r} has expired")
    if watchlist.status == "approved":
        watchlist.status = "draft"
        watchlist.approved_by = None
        watchlist.approved_at = None
        audit.record(session, principal.actor, "watchlist.reopen", "watchlist", watchlist.id, {})
    return watchlist


def add_entry(
    session: Session,
    principal: Principal,
    watchlist: str | int,
    person_ref: str,
    display_name: str,
) -> WatchlistEntry:
    target = _editable(session, principal, watchlist)
    if not person_ref.strip() or not display_name.strip():
        raise ReviewError("an entry needs a person reference and a display name")
    exists = select(WatchlistEntry.id).where(
        WatchlistEntry.watchlist_id == target.id, WatchlistEntry.person_ref == person_ref
    )
    if session.scalar(exists) is not None:
        raise Conflict(f"{person_ref!r} is already on {target.name!r}")
    entry = WatchlistEntry(
        watchlist_id=target.id,
        person_ref=person_ref,
        display_name=display_name,
        created_by=principal.actor,
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        principal.actor,
        "watchlist.entry.add",
        "watchlist_entry",
        entry.id,
        {"watchlist": target.name, "person_ref": person_ref},
    )
    return entry


def get_entry(session: Session, watchlist: str | int, person_ref: str) -> WatchlistEntry:
    target = get_watchlist(session, watchlist)
    entry = session.scalar(
        select(WatchlistEntry).where(
            WatchlistEntry.watchlist_id == target.id, WatchlistEntry.person_ref == person_ref
        )
    )
    if entry is None:
        raise NotFound(f"no {person_ref!r} on {target.name!r}")
    return entry


def remove_entry(
    session: Session, principal: Principal, watchlist: str | int, person_ref: str
) -> None:
    """Take a person off a watchlist: their images and templates go with them."""
    target = _editable(session, principal, watchlist)
    entry = get_entry(session, target.id, person_ref)
    session.delete(entry)
    audit.record(
        session,
        principal.actor,
        "watchlist.entry.remove",
        "watchlist_entry",
        entry.id,
        {"watchlist": target.name, "person_ref": person_ref},
    )


@dataclass(frozen=True)
class ImageSource:
    """Where an enrolled image comes from (custody record, file name) and when it was taken."""

    source: str
    captured_at: datetime | None = None


def enroll(
    session: Session,
    principal: Principal,
    entry: WatchlistEntry,
    rgb: np.ndarray,
    data: bytes,
    origin: ImageSource,
    engine: FaceEngine,
    vault: Vault,
) -> WatchlistImage:
    """Enroll one image of ``entry``; raises EnrollmentRejected (with its reason) when the image
    is not fit to search with."""
    target = _editable(session, principal, entry.watchlist_id)
    if engine.model != target.model:
        raise Conflict(f"watchlist {target.name!r} holds {target.model} templates")
    face = engine.enrollment_face(rgb)
    image = WatchlistImage(
        entry_id=entry.id,
        source=origin.source,
        captured_at=origin.captured_at,
        sha256=hashlib.sha256(data).hexdigest(),
        quality=face.quality,
        template=vault.seal_template(face.embedding),
        crop=vault.seal(jpeg(face_crop(rgb, face.box))),
        enrolled_by=principal.actor,
    )
    session.add(image)
    session.flush()
    audit.record(
        session,
        principal.actor,
        "watchlist.enroll",
        "watchlist_image",
        image.id,
        {"watchlist": target.name, "person_ref": entry.person_ref, "quality": face.quality},
    )
    return image


def jpeg(rgb: np.ndarray) -> bytes:
    """A face crop as JPEG, for the human who compares two faces."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def expire_due(session: Session, actor: str = "system:faces") -> list[str]:
    """Expire the watchlists past their expiry and purge their templates and crops."""
    now = utcnow()
    due = list(
        session.scalars(
            select(Watchlist).where(Watchlist.status != "expired", Watchlist.expires_at <= now)
        )
    )
    for watchlist in due:
        entries = select(WatchlistEntry.id).where(WatchlistEntry.watchlist_id == watchlist.id)
        session.execute(
            update(WatchlistImage)
            .where(WatchlistImage.entry_id.in_(entries))
            .values(template=None, crop=None)
        )
        watchlist.status = "expired"
        watchlist.purged_at = now
        audit.record(session, actor, "watchlist.expire", "watchlist", watchlist.id, {})
    return [watchlist.name for watchlist in due]


def searchable(session: Session, names: Sequence[str] | None, model: str) -> list[Watchlist]:
    """The watchlists a search may use: every one named must be approved, in date and of
    ``model``; none named means every such watchlist. (Expiry's purge is
    :func:`expire_due`'s, in its own transaction: a refused search must not undo it.)"""
    now = utcnow()
    if not names:
        approved = select(Watchlist).where(
            Watchlist.status == "approved",
            Watchlist.review_at > now,
            Watchlist.expires_at > now,
            Watchlist.model == model,
        )
        chosen = list(session.scalars(approved))
        if not chosen:
            raise Conflict("no approved watchlist to search")
        return chosen
    chosen = [get_watchlist(session, name) for name in names]
    for watchlist in chosen:
        if watchlist.expires_at <= now:
            raise Conflict(f"watchlist {watchlist.name!r} has expired")
        if watchlist.status != "approved":
            raise Conflict(f"watchlist {watchlist.name!r} is {watchlist.status}, not approved")
        if watchlist.review_at <= now:
            raise Conflict(f"watchlist {watchlist.name!r} is past its review date")
        if watchlist.model != model:
            raise Conflict(f"watchlist {watchlist.name!r} holds {watchlist.model} templates")
    return chosen
