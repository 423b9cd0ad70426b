"""Pseudonymisation at ingest on a real store (SQLite and PostgreSQL): keyed, deterministic
pseudonyms; originals sealed apart and revealed; a pseudonymised scan leaves no raw account
reference in any row; a missing key stops startup."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select

from test_review_support import WEIGHTS
from vigil.config import Settings
from vigil.networks import AccountLedger, NetworkSettings
from vigil.pseudonyms import PseudonymError, Pseudonymiser, key_bytes, reveal_with
from vigil.store import Base, Database
from vigil.store.models import Alert, AuthorAccount, PostRecord, Pseudonym
from vigil.text.posts import Post
from vigil.text.scanner import PostScanner
from vigil.text.settings import TextSettings

THREAT = "@Bob_Real we should kill every one of them, shoot them all in the streets"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def test_pseudonyms_are_keyed_deterministic_stored_once_and_revealed(db: Database) -> None:
    key = key_bytes(SecretStr(new_key()))
    names = Pseudonymiser(key, db)
    alice = names.pseudonym("x", "alice")
    assert re.fullmatch(r"p_[a-z2-7]{20}", alice)
    assert names.pseudonym("x", "alice") == alice == names.compute("x", "alice")
    assert names.pseudonym("telegram", "alice") != alice, "one platform's alice is not another's"
    assert Pseudonymiser(key_bytes(SecretStr(new_key())), db).compute("x", "alice") != alice
    assert names.pseudonyms("x", ["alice", "bob", ""]) == {
        "alice": alice,
        "bob": names.compute("x", "bob"),
    }
    with db.session() as session:
        # x:alice (asked for three times), telegram:alice, x:bob
        assert session.scalar(select(func.count()).select_from(Pseudonym)) == 3
        sealed = session.get_one(Pseudonym, alice).sealed
    assert b"alice" not in sealed
    assert names.reveal("x", alice) == "alice"
    with pytest.raises(PseudonymError, match="no pseudonym"):
        names.reveal("telegram", alice)
    with pytest.raises(PseudonymError, match="another key"):
        Pseudonymiser(key_bytes(SecretStr(new_key())), db).reveal("x", alice)


def test_pseudonymisation_without_a_key_stops_startup() -> None:
    with pytest.raises(ValidationError, match="VIGIL_PSEUDONYM_KEY is not set"):
        TextSettings(accounts_pseudonymise=True)
    with pytest.raises(ValidationError, match="urlsafe base64 of 32 bytes"):
        NetworkSettings(accounts_pseudonymise=True, pseudonym_key="too short")
    assert TextSettings(accounts_pseudonymise=True, pseudonym_key=new_key()).accounts_pseudonymise


def test_a_pseudonymised_scan_stores_no_raw_reference_anywhere(
    settings: Settings, tmp_path: Path
) -> None:
    mapping_url = f"sqlite:///{tmp_path / 'pseudonyms.db'}"
    on = TextSettings(
        **{
            **settings.model_dump(),
            "accounts_pseudonymise": True,
            "pseudonym_key": new_key(),
            "pseudonym_database_url": mapping_url,
        }
    )
    db = Database(on.resolved_database_url)
    ledger = AccountLedger(NetworkSettings.of(on), WEIGHTS)
    scanner = PostScanner(db, on, hooks=[ledger])
    posts = [
        Post(
            id="1",
            platform="x",
            author_ref="Alice_Real",
            text=THREAT,
            url="https://x.com/Alice_Real/status/1",
            mentions=("Bob_Real",),
        ),
        Post(
            id="2",
            platform="x",
            author_ref="Bob_Real",
            text="@alice_real what did you just say?",
            in_reply_to="1",
            mentions=("Alice_Real",),
            url="https://x.com/i/web/status/2",
        ),
    ]
    result = scanner.scan(posts)
    assert (result.scanned, result.alerts) == (2, 1)

    rows = []
    with db.session() as session:
        for table in Base.metadata.sorted_tables:
            rows += [repr(tuple(row)) for row in session.execute(select(table))]
        alice = session.scalars(select(PostRecord.author_ref).where(PostRecord.key == "x:1")).one()
        accounts = set(session.scalars(select(AuthorAccount.author_ref)))
        alert = session.scalars(select(Alert)).one()
        first = session.scalars(select(PostRecord).where(PostRecord.key == "x:1")).one()
        assert session.scalar(select(func.count()).select_from(Pseudonym)) == 0, "kept apart"
    dump = "\n".join(rows).lower()
    assert "alice_real" not in dump and "bob_real" not in dump
    assert alice.startswith("p_")
    assert alert.author_ref == alice
    assert first.url == "", "the URL named the author"
    assert first.text.startswith("@p_"), "the mention in the text is the pseudonym too"
    assert accounts == {alice, first.links["mentions"][0]}, "the two authors"
    assert reveal_with(on, db, "x", alice) == "Alice_Real"
    mapping = Database(mapping_url)
    with mapping.session() as session:
        assert session.scalar(select(func.count()).select_from(Pseudonym)) == 2
    mapping.dispose()
    db.dispose()
