#!/usr/bin/env bash
# Create a virtual environment (Python 3.11+) and install the pinned environment and this project.
#   scripts/setup.sh                       .venv: the course and the package (binder/requirements.txt)
#   scripts/setup.sh dev                   .venv: plus the test and benchmark tools (requirements-dev.txt)
#   scripts/setup.sh --venv .venv-course   the course's environment alone, in another folder (the tests
#                                          run JupyterLab in it, as Binder has it: no test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
requirements=binder/requirements.txt
while [ $# -gt 0 ]; do
  case "$1" in
    dev) requirements=requirements-dev.txt ;;
    --venv) [ -n "${2:-}" ] || { echo "error: --venv needs a folder" >&2; exit 2; }; venv=$2; shift ;;
    *) echo "error: unknown argument '$1' (expected: dev, --venv FOLDER)" >&2; exit 2 ;;
  esac
  shift
done
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "error: Python 3.11 or newer is needed ($python is $("$python" --version 2>&1))" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r "$requirements" -e .
