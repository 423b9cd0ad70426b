#!/usr/bin/env bash
# Install vigil into ./.venv with everything it needs, on a fresh Debian/Ubuntu machine or an
# existing one. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# vpdq builds against FFmpeg's libraries; ffmpeg itself is used by the live-stream tests.
DEBIAN_PACKAGES=(pkg-config ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
                 libswresample-dev libavfilter-dev libavdevice-dev)

missing=()
if command -v dpkg-query >/dev/null; then
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# embed: the image-embedding second stage (CPU torch); dev: test and lint tools.
.venv/bin/python -m pip install -q -e ".[${VIGIL_EXTRAS:-embed,dev}]"
echo "vigil installed: $(.venv/bin/vigil --version)"
