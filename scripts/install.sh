#!/usr/bin/env bash
# Install vigil into ./.venv with everything it needs, on a fresh Debian/Ubuntu machine or an
# existing one. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# vpdq builds against FFmpeg's libraries; ffmpeg itself is used by the live-stream tests.
DEBIAN_PACKAGES=(pkg-config ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
                 libswresample-dev libavfilter-dev libavdevice-dev)
bash scripts/debian-packages.sh "${DEBIAN_PACKAGES[@]}"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# embed: the image-embedding second stage (CPU torch); live: live-stream detection heads, OCR
# and ONNX; text: post monitoring (multilingual embedding, language id, MinHash);
# faces: retrospective face search (dlib models, template encryption); dev: test and lint tools.
.venv/bin/python -m pip install -q -e ".[${VIGIL_EXTRAS:-embed,live,text,faces,dev}]"
echo "vigil installed: $(.venv/bin/vigil --version)"
