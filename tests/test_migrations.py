"""Upgrading a database that already holds data keeps the data and gives new columns defaults."""

from __future__ import annotations

from sqlalchemy import text

from vigil.store import Database, make_engine, migrate


def test_upgrade_from_the_first_schema_keeps_banks(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bank (name, description, negative, enabled, created_at, updated_at) "
                "VALUES ('old', '', false, true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    migrate(engine)
    engine.dispose()

    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            row = connection.execute(
                text("SELECT name, severity, alert_on_match, auto_action FROM bank")
            ).one()
        assert tuple(row) == ("old", 5, True, None)
    finally:
        db.dispose()
