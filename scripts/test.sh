#!/usr/bin/env bash
# Install vigil and its test tools, make sure PostgreSQL is up, then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Test-only Debian packages. The console's end-to-end test drives Debian's chromium through
# Playwright, which cannot download a browser of its own here; the live-ingest tests relay RTMP
# through nginx's rtmp module, and the post-monitor tests consume from NATS JetStream (both run
# by the tests on a free port, not as services).
TEST_PACKAGES=(chromium nginx libnginx-mod-rtmp nats-server)
bash scripts/debian-packages.sh "${TEST_PACKAGES[@]}"
bash scripts/ensure-postgres.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
