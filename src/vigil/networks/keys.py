"""Accounts by key, ``(platform, author_ref)``, in a WHERE clause that indexes can serve.

``tuple_(platform, ref).in_(keys)`` reads naturally but SQLite plans it as a scan of the whole
table (``EXPLAIN QUERY PLAN``: ``SCAN post``), which made the ledger slower with every 100k posts
stored; one ``platform = ? AND author_ref IN (...)`` per platform is an index lookup on both
databases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, false, or_
from sqlalchemy.orm import InstrumentedAttribute

Key = tuple[str, str]


def keys_in(
    platform: InstrumentedAttribute[str],
    author_ref: InstrumentedAttribute[str],
    keys: Iterable[Key],
) -> ColumnElement[bool]:
    refs: dict[str, list[str]] = defaultdict(list)
    for key_platform, ref in keys:
        refs[key_platform].append(ref)
    if not refs:
        return false()
    return or_(
        *(
            and_(platform == name, author_ref.in_(sorted(names)))
            for name, names in sorted(refs.items())
        )
    )
