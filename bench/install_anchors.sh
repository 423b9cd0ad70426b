#!/usr/bin/env bash
# The two English baselines of bench/text_quality.py, in their own virtual environment:
# alt-profanity-check pins scikit-learn exactly and hatesonar ships models pickled for its
# own versions, so neither may share vigil's .venv. Usage: bench/install_anchors.sh [python]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${1:-python3}"
"$python" -m venv "$here/anchors/venv"
"$here/anchors/venv/bin/pip" install --quiet hatesonar alt-profanity-check
printf '*\n' > "$here/anchors/.gitignore"
echo "anchors installed in $here/anchors/venv"
