"""``GET /metrics`` over real HTTP: request counts by route template, hash and match counters,
and the queue and outbox gauges read from the database at scrape time. Who may scrape is in the
denial matrix (tests/test_api_auth.py): ``metrics:read`` is the admin's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_review_support import receiver
from vigil.actions import KINDS
from vigil.api.settings import ApiSettings
from vigil.config import Settings

from media_factory import write_jpeg
from test_api_support import Api, running_api

pytest_plugins = ["test_api_support"]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    # No delivery worker: the outbox keeps what decisions put in it.
    quiet = ApiSettings(**{**settings.model_dump(), "actions_worker": False})
    with running_api(quiet) as running:
        receiver(running.known.db, KINDS)
        yield running


def _scrape(client: httpx.Client) -> tuple[str, Samples]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_never_by_path(api: Api) -> None:
    with api.client() as admin:
        assert admin.get("/v1/banks/made-up-bank", params={"q": "secret"}).status_code == 404
        assert admin.get("/no/such/page").status_code == 404
        text, samples = _scrape(admin)
    assert "made-up-bank" not in text and "secret" not in text and "/no/such" not in text
    route = {"method": "GET", "route": "/v1/banks/{name}", "status": "404"}
    assert _value(samples, "vigil_http_requests_total", **route) == 1
    assert _value(samples, "vigil_http_requests_total", **{**route, "route": "(unrouted)"}) == 1
    count = _value(samples, "vigil_http_request_duration_seconds_count", route="/v1/banks/{name}")
    assert count == 1


def test_hashes_and_matches_are_counted_by_signal_type_and_bank(api: Api) -> None:
    md5 = "0f343b0931126a20f133d67c2b018a3b"
    labels = {"signal_type": "md5", "bank": "metrics-bank", "outcome": "matched"}
    with api.client() as admin:
        _, before = _scrape(admin)
        admin.post("/v1/banks", json={"name": "metrics-bank"}).raise_for_status()
        signal = {"signal_type": "md5", "signal": md5}
        admin.post("/v1/banks/metrics-bank/signals", json=[signal]).raise_for_status()
        for _ in range(2):
            admin.post("/v1/match/signals", json=[signal]).raise_for_status()
        hashed = admin.post("/v1/hash", files={"file": ("a.txt", b"not media")})
        _, after = _scrape(admin)
    assert hashed.status_code == 422  # hashed nothing, counts nothing
    matched = _value(after, "vigil_matches_total", **labels)
    assert matched - _value(before, "vigil_matches_total", **labels) == 2
    assert _value(after, "vigil_hashes_total", signal_type="md5") == _value(
        before, "vigil_hashes_total", signal_type="md5"
    )


def test_uploads_count_their_signals(api: Api, tmp_path: Path) -> None:
    image = write_jpeg(tmp_path / "a.jpg", seed=1)
    with api.client() as admin:
        _, before = _scrape(admin)
        response = admin.post("/v1/hash", files={"file": ("a.jpg", image.read_bytes())})
        _, after = _scrape(admin)
    assert response.status_code == 200, response.text
    for name in {signal["signal_type"] for signal in response.json()["signals"]}:
        delta = _value(after, "vigil_hashes_total", signal_type=name) - _value(
            before, "vigil_hashes_total", signal_type=name
        )
        assert delta >= 1, name


def test_queue_and_outbox_gauges_are_read_at_scrape_time(api: Api) -> None:
    alert = {"dedupe_key": "post-1", "source": "text", "content_kind": "text", "severity": 5}
    with api.client() as admin, api.client("reviewer") as reviewer:
        _, empty = _scrape(admin)
        for key in ("post-1", "post-2"):
            admin.post("/v1/alerts", json={**alert, "dedupe_key": key}).raise_for_status()
        _, queued = _scrape(admin)
        claimed = reviewer.post("/v1/alerts/next").json()["id"]
        decided = reviewer.post(
            f"/v1/alerts/{claimed}/decisions", json={"outcome": "confirm", "reason": "recruiting"}
        )
        assert decided.status_code == 201, decided.text
        _, after = _scrape(admin)
    assert _value(empty, "vigil_alerts_queued", status="open") == 0
    assert _value(empty, "vigil_metrics_database_up") == 1
    assert _value(queued, "vigil_alerts_queued", status="open") == 2
    assert _value(after, "vigil_alerts_queued", status="open") == 1
    assert _value(after, "vigil_outbox_actions", status="pending") >= 1
