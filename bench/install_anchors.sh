#!/usr/bin/env bash
# The two English baselines of bench/text_quality.py, in their own virtual environment:
# alt-profanity-check pins scikit-learn exactly and hatesonar's models need their own
# versions, so neither may share vigil's .venv. hatesonar's ONNX string normalizer needs the
# en_US.UTF-8 locale, generated here when missing (Debian; needs root).
# Usage: bench/install_anchors.sh [python]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${1:-python3}"
if ! locale -a | grep -qi '^en_US\.utf-\?8$'; then
    apt-get install -y -q locales
    sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
    locale-gen
fi
"$python" -m venv "$here/anchors/venv"
"$here/anchors/venv/bin/pip" install --quiet hatesonar alt-profanity-check
printf '*\n' > "$here/anchors/.gitignore"
echo "anchors installed in $here/anchors/venv"
