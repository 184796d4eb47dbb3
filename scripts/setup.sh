#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the pinned environment and this project.
#   scripts/setup.sh        the course and the package (binder/requirements.txt)
#   scripts/setup.sh dev    plus the test and benchmark tools (requirements-dev.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "error: Python 3.11 or newer is needed ($python is $("$python" --version 2>&1))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
requirements=binder/requirements.txt
[ "${1:-}" = dev ] && requirements=requirements-dev.txt
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements" -e .
