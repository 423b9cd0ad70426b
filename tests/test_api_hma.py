"""HMA-compatible routes, and the URL fetcher's refusal to reach into private networks."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from vigil.api.settings import ApiSettings
from vigil.net import address_allowed

from media_factory import write_jpeg
from test_api_support import Api, running_api

pytest_plugins = ["test_api_support"]


@contextmanager
def file_server(host: str, files: dict[str, bytes], redirects: dict[str, str]) -> Iterator[str]:
    """A plain HTTP server on ``host``: serves ``files``, answers 302 for ``redirects``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.end_headers()
            elif self.path in files:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                self.wfile.write(files[self.path])
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    return write_jpeg(tmp_path / "photo.jpg", seed=11)


def test_ssrf_loopback_and_private_urls_are_refused(api: Api, jpeg: Path) -> None:
    files = {"/photo.jpg": jpeg.read_bytes()}
    with file_server("127.0.0.1", files, {}) as origin, api.client() as client:
        for url in (
            f"{origin}/photo.jpg",
            f"http://localhost:{origin.rsplit(':', 1)[1]}/photo.jpg",
            "http://[::1]/photo.jpg",
            "http://[::ffff:127.0.0.1]/photo.jpg",
            "http://10.0.0.1/photo.jpg",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ):
            for route in ("/h/hash", "/m/lookup"):
                response = client.get(route, params={"url": url})
                assert response.status_code == 400, (route, url, response.text)
                assert response.json()["error"] == "url_refused"


def test_allow_listed_network_is_fetched_but_redirects_out_of_it_are_not(
    api_settings: ApiSettings, jpeg: Path
) -> None:
    allowed = api_settings.model_copy(update={"url_fetch_allow": [ip_network("127.0.0.1/32")]})
    # 127.0.0.2 is loopback too, but outside the allow-list.
    with (
        file_server("127.0.0.2", {"/inner.jpg": jpeg.read_bytes()}, {}) as inner,
        file_server(
            "127.0.0.1",
            {"/photo.jpg": jpeg.read_bytes()},
            {"/hop": "/photo.jpg", "/escape": f"{inner}/inner.jpg"},
        ) as origin,
        running_api(allowed) as api,
        api.client() as client,
    ):
        direct = client.get("/h/hash", params={"url": f"{origin}/photo.jpg"})
        hopped = client.get("/h/hash", params={"url": f"{origin}/hop"})
        escaped = client.get("/h/hash", params={"url": f"{origin}/escape"})
        missing = client.get("/h/hash", params={"url": f"{origin}/nothing.jpg"})
        uploaded = client.post("/h/hash", files={"photo": ("photo.jpg", jpeg.read_bytes())})
    assert direct.status_code == 200, direct.text
    assert set(direct.json()) >= {"pdq", "md5", "sha256"}
    assert hopped.json() == direct.json()
    assert uploaded.json() == direct.json()
    assert escaped.status_code == 400
    assert escaped.json()["error"] == "url_refused"
    assert missing.status_code == 502


def test_m_lookup_returns_bank_names_like_hma(api: Api, jpeg: Path) -> None:
    with api.client() as client:
        for name in ("alpha", "beta"):
            client.post("/v1/banks", json={"name": name}).raise_for_status()
        client.post("/v1/banks/beta/content", files={"file": ("p.jpg", jpeg.read_bytes())})
        hashes = client.post("/h/hash", files={"photo": ("p.jpg", jpeg.read_bytes())}).json()
        by_md5 = client.get(
            "/m/lookup", params={"signal": hashes["md5"], "signal_type": "video_md5"}
        )
        no_match = client.get("/m/lookup", params={"signal": "0" * 32, "signal_type": "md5"})
        by_upload = client.post("/m/lookup", files={"photo": ("p.jpg", jpeg.read_bytes())})
        missing_args = client.get("/m/lookup", params={"signal": "0" * 32})
        bad_type = client.get("/m/lookup", params={"signal": "00", "signal_type": "nope"})
    assert by_md5.json() == ["beta"]
    assert no_match.json() == []
    assert by_upload.json()["md5"] == ["beta"]
    assert by_upload.json()["pdq"] == ["beta"]
    assert missing_args.status_code == 422
    assert bad_type.status_code == 422


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("224.0.0.1", False),
        ("233.252.0.1", False),  # multicast that ipaddress counts as global
        ("240.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("ff02::1", False),
    ],
)
def test_address_policy(address: str, allowed: bool) -> None:
    assert address_allowed(ip_address(address), []) is allowed


def test_allow_list_opens_only_its_network() -> None:
    allow = [ip_network("10.20.0.0/16")]
    assert address_allowed(ip_address("10.20.3.4"), allow)
    assert not address_allowed(ip_address("10.21.3.4"), allow)
