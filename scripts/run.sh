#!/usr/bin/env bash
# Set everything up and run the main job: reproduce the thesis's SSIM tables (quick version
# by default; pass arguments to idivkit reproduce, e.g. `scripts/run.sh --epochs 50 --seeds 5`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then set -- --quick; fi
exec .venv/bin/idivkit reproduce "$@"
