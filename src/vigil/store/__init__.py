"""The system of record: SQLAlchemy models, sessions and Alembic migrations."""

from vigil.store.db import Database, make_engine, migrate
from vigil.store.models import ApiToken, Bank, BankEntry, Base, EntrySignal, lookup_key

__all__ = [
    "ApiToken",
    "Bank",
    "BankEntry",
    "Base",
    "Database",
    "EntrySignal",
    "lookup_key",
    "make_engine",
    "migrate",
]
