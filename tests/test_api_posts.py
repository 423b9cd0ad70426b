"""``/v1/posts`` over real HTTP: roles, batches with bad records, retries, caps, reading back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vigil.config import Settings
from vigil.text.settings import TextSettings

from test_api_support import Api, running_api

pytest_plugins = ["test_api_support"]

THREAT = "I will shoot every one of you at the mosque on friday, you will all die"


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    small = TextSettings(
        **{**settings.model_dump(), "text_max_push_posts": 5, "text_max_push_bytes": 20_000}
    )
    with running_api(small) as running:
        yield running


def _posts(*texts: str) -> list[dict[str, object]]:
    return [
        {"id": str(n), "platform": "testnet", "author_ref": "a", "text": t}
        for n, t in enumerate(texts)
    ]


def test_push_scans_flags_and_reads_back(api: Api) -> None:
    with api.client("analyst") as client:
        response = client.post(
            "/v1/posts",
            json={"posts": [*_posts(THREAT, "nice weather today"), {"id": "x"}, "not an object"]},
        )
    assert response.status_code == 422, "a record that is not an object fails validation"
    with api.client("analyst") as client:
        response = client.post(
            "/v1/posts", json={"posts": [*_posts(THREAT, "nice weather today"), {"id": "x"}]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["scanned"] == 2
        assert body["alerts"] == 1
        assert [r["index"] for r in body["rejected"]] == [2]
        alert_id = body["alert_ids"]["testnet:0"]
        retried = client.post("/v1/posts", json={"posts": _posts(THREAT)}).json()
        assert (retried["scanned"], retried["duplicates"], retried["alerts"]) == (0, 1, 0)
    with api.client("reviewer") as client:
        stored = client.get("/v1/posts/testnet/0").json()
        assert stored["alert_id"] == alert_id
        assert "threat_incitement" in stored["flagged"]
        assert client.get("/v1/posts/testnet/404").status_code == 404
        alert = client.get(f"/v1/alerts/{alert_id}").json()
        assert alert["source"] == "text"
        assert alert["severity"] == 10


def test_push_needs_a_collector_role(api: Api) -> None:
    with api.client(None) as client:
        assert client.post("/v1/posts", json={"posts": []}).status_code == 401
        assert client.get("/v1/posts/testnet/0").status_code == 401
    with api.client("reviewer") as client:
        assert client.post("/v1/posts", json={"posts": []}).status_code == 403


def test_bad_bodies_are_refused_with_a_reason(api: Api) -> None:
    with api.client("analyst") as client:
        broken = client.post(
            "/v1/posts", content=b'{"posts": [', headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        assert broken.json()["error"] == "invalid_json"
        too_many = client.post("/v1/posts", json={"posts": _posts(*["hello"] * 6)})
        assert too_many.status_code == 413
        assert too_many.json()["error"] == "too_many_posts"
        huge = client.post("/v1/posts", json={"posts": _posts("x" * 30_000)})
        assert huge.status_code == 413
        assert huge.json()["error"] == "too_large"
        hostile = client.post(
            "/v1/posts", json={"posts": _posts("\u202e\u200b" * 50 + "e\u0301" * 500, "nul\x00")}
        )
        assert hostile.status_code == 200
        assert [r["index"] for r in hostile.json()["rejected"]] == [1]
        # An author or a mention that would impersonate another account (a right-to-left
        # override turns "lanigiro" round) is refused, with the character named.
        spoofed = [
            {"id": "s1", "platform": "x", "author_ref": "evil\u202elanigiro", "text": "hi"},
            {"id": "s2", "platform": "x", "author_ref": "ok", "mentions": ["a\x07b"], "text": "hi"},
            {"id": "s3", "platform": "x", "author_ref": "fine", "text": "hi"},
        ]
        refused = client.post("/v1/posts", json={"posts": spoofed})
        assert refused.status_code == 200
        rejected = refused.json()["rejected"]
        assert [r["index"] for r in rejected] == [0, 1]
        assert "U+202E" in str(rejected[0]) and "U+0007" in str(rejected[1])


def test_with_a_queue_pushes_go_to_workers_once(
    settings: Settings, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VIGIL_TEXT_QUEUE: serve only validates and queues (202); a worker's handler stores and
    scans; a client's retried push is queued under the same id and stored once."""
    from vigil.bus import BusSettings, open_bus
    from vigil.store import Database
    from vigil.text.scanner import PostScanner
    from vigil.text.sources import posts_handler

    monkeypatch.setenv("VIGIL_BUS_URL", nats_url)
    queued = TextSettings(**{**settings.model_dump(), "text_queue": True})
    with running_api(queued) as api:
        with api.client("analyst") as client:
            first = client.post(
                "/v1/posts", json={"posts": [*_posts(THREAT, "hello"), {"id": "x"}]}
            )
            retried = client.post("/v1/posts", json={"posts": _posts(THREAT)})
        assert first.status_code == 202, first.text
        assert (first.json()["queued"], first.json()["scanned"]) == (2, 0)
        assert [r["index"] for r in first.json()["rejected"]] == [2]
        assert retried.status_code == 202

        bus = open_bus(BusSettings(bus_url=nats_url))
        db = Database(queued.resolved_database_url)
        try:
            handle = posts_handler(PostScanner(db, queued))
            taken = bus.fetch("posts", 10, 2.0)
            assert sorted(d.message.id or "" for d in taken) == ["testnet:0", "testnet:1"]
            handle([d.message for d in taken])
            for delivery in taken:
                delivery.ack()
            assert bus.fetch("posts", 10, 0.5) == []
        finally:
            bus.close()
            db.dispose()
        with api.client("reviewer") as client:
            stored = client.get("/v1/posts/testnet/0").json()
            assert "threat_incitement" in stored["flagged"] and stored["alert_id"] is not None
            assert client.get("/v1/posts/testnet/1").status_code == 200
