#!/usr/bin/env bash
# Install vigil and its test tools, make sure PostgreSQL is up, then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/ensure-postgres.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
