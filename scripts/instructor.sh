#!/usr/bin/env bash
# Start JupyterLab as an instructor: in course/, so that nbgrader (the Nbgrader menu, Formgrader,
# the Create Assignment sidebar, Validate) reads course/nbgrader_config.py. Learner settings
# (jupyter/learner/) are not used here.
#   scripts/instructor.sh            set up .venv/ if needed, then start
#   scripts/instructor.sh --port 8899
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/jupyter ] || bash scripts/setup.sh
# nbgrader runs helper programs (alembic, for the gradebook) by name: the virtualenv's come first.
export PATH="$PWD/.venv/bin:$PATH"
cd course
exec ../.venv/bin/jupyter lab "$@"
