#!/usr/bin/env bash
# Install vigil and its test tools, make sure PostgreSQL is up, then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The console's end-to-end test drives Debian's chromium through Playwright, which cannot
# download a browser of its own here.
if command -v dpkg-query >/dev/null \
  && ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "installing Debian package: chromium"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
bash scripts/ensure-postgres.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
