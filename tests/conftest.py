"""Shared fixtures. Every store-backed test runs on SQLite and on PostgreSQL.

PostgreSQL tests skip when no server answers locally, but fail in CI (``CI=true``), where a
skipped database would hide a broken install step.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from nats_server import NatsServer, start_nats
from postgres_server import PostgresServer, start_postgres
from vigil.config import Settings
from vigil.store import Database

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_ADMIN_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@localhost:5432/postgres"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_database() -> Iterator[str]:
    """Create a throw-away database for one test and drop it afterwards."""
    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if in_ci():
            pytest.fail(f"PostgreSQL is required in CI but not reachable: {exc}")
        pytest.skip("PostgreSQL is not running locally")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vigil.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database, for tests that need several processes on one store."""
    yield from _postgres_database()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def require_embedding() -> None:
    """The embedding stage needs the `embed` extra: skip without it locally, fail in CI."""
    from vigil.hashing.service import embedding_available

    if not embedding_available():
        if in_ci():
            pytest.fail("the embed extra (torch) is required in CI")
        pytest.skip("the embed extra (torch) is not installed")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder is missing: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream of the test's own (skipped locally without the binary,
    failing in CI)."""
    server = start_nats(tmp_path / "jetstream", in_ci())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the test's own, which it may stop and start under running
    processes (skipped locally without PostgreSQL's programs, failing in CI)."""
    server = start_postgres(tmp_path, in_ci())
    try:
        yield server
    finally:
        server.remove()
