#!/usr/bin/env bash
# Set everything up (virtual environments with the pinned versions) and run the test suite.
#   .venv         the course, the package and the test tools
#   .venv-course  the course's environment alone, as Binder and `scripts/setup.sh` install it: the
#                 browser tests run JupyterLab and the lessons' kernels in it, as learners do
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/setup.sh --venv .venv-course
exec .venv/bin/python -m pytest "$@"
