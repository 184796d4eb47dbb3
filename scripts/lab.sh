#!/usr/bin/env bash
# Start JupyterLab as a learner, with the settings Binder uses (binder/start, jupyter/learner/):
# the repository as its root, lesson 00 open, nbgrader's Validate button with the course's settings, no instructor tools.
#   scripts/lab.sh                   set up .venv/ if needed, fetch MNIST if needed, start
#   scripts/lab.sh --port 8899       extra arguments go to `jupyter lab`
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/jupyter ] || bash scripts/setup.sh
# MNIST into ~/.keras/datasets now rather than during lesson 00 (nothing to do if it is there).
.venv/bin/python -m idivkit.data >/dev/null \
  || echo "warning: MNIST could not be fetched now; lesson 00 will try again" >&2
exec binder/start .venv/bin/jupyter lab "$@"
