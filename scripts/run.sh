#!/usr/bin/env bash
# Set everything up and run the main job: train the thesis's six cells at its settings (one seed)
# and print their SSIM beside the thesis's table; arguments go to idivkit reproduce instead
# (e.g. `scripts/run.sh --epochs 50 --seeds 5` for the full grid, `--quick` for a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then set -- --cells; fi
exec .venv/bin/idivkit reproduce "$@"
