"""Prometheus metrics at ``GET /metrics`` (permission ``metrics:read``; Prometheus scrapes with a
bearer token).

Two kinds: counters of what this process did (requests, hashes, matches), and gauges read from
the database at scrape time (the review queue, the outbox), so every replica reports the same
queue and no gauge drifts from the truth between restarts.

Labels are bounded: routes by template (``/v1/banks/{name}``, never a path or query a client
made up), signal types and statuses from fixed lists, banks as many as an admin created.

The hashing counters live with the hashing package (:mod:`vigil.hashing.metrics`), in the same
default registry, so a capability never imports the API to count its work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy import Row

    from vigil.store import Database

METRICS_PATH = "/metrics"
_UNROUTED = "(unrouted)"

log = get_logger(__name__)


class HttpMetrics:
    """Requests and their latency, by route template; one per app, in the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vigil_http_requests",
            "HTTP requests, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "vigil_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


def route_template(scope: Scope) -> str:
    """The template of the route that answered (set by the router), else ``(unrouted)``."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else _UNROUTED


class MetricsMiddleware:
    """Times every HTTP request; an exception that escapes the app counts as a 500."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route_template(scope), status, elapsed)


def _counts(rows: Iterable[Row[str, int]]) -> dict[str, int]:
    return {status: count for status, count in rows}


class QueueCollector(Collector):
    """Gauges read at scrape time: alerts in the review queue and outbox actions, by status.
    Two ``GROUP BY`` counts over indexed status columns."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from vigil.review import QUEUE_STATUSES
        from vigil.store.models import Action, Alert

        alerts = GaugeMetricFamily(
            "vigil_alerts_queued",
            "Alerts waiting in the review queue, by status.",
            labels=["status"],
        )
        actions = GaugeMetricFamily(
            "vigil_outbox_actions", "Outbox actions, by status.", labels=["status"]
        )
        up = GaugeMetricFamily("vigil_metrics_database_up", "1 if the gauges could be read.")
        try:
            with self.db.session() as session:
                queued: dict[str, int] = dict.fromkeys(QUEUE_STATUSES, 0)
                query = select(Alert.status, func.count()).where(Alert.status.in_(QUEUE_STATUSES))
                queued.update(_counts(session.execute(query.group_by(Alert.status))))
                by_status = select(Action.status, func.count()).group_by(Action.status)
                outbox = _counts(session.execute(by_status))
        except Exception as exc:  # a scrape must still answer, with the process metrics
            log.warning("metrics.database_unreachable", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        for status, count in sorted(queued.items()):
            alerts.add_metric([status], count)
        for status, count in sorted(outbox.items()):
            actions.add_metric([status], count)
        up.add_metric([], 1)
        yield from (alerts, actions, up)


def install(app: FastAPI, db: Database) -> None:
    """The middleware and ``GET /metrics`` (behind ``metrics:read``)."""
    from vigil.api.auth import Require  # not at load time: vigil.hashing imports this module

    registry = CollectorRegistry()
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    registry.register(QueueCollector(db))

    def metrics() -> Response:
        """Prometheus text format: this app's requests and queue gauges, then the process's
        hash and match counters."""
        body = generate_latest(registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(
        METRICS_PATH,
        metrics,
        methods=["GET"],
        tags=["probes"],
        dependencies=[Depends(Require("metrics:read"))],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics."}},
    )


__all__ = ["METRICS_PATH", "install", "route_template"]
