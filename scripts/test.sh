#!/usr/bin/env bash
# Set everything up (a virtual environment with the pinned versions) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec .venv/bin/python -m pytest "$@"
