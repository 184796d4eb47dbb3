#!/usr/bin/env bash
# Autograde a lesson's collected submissions with the course's sandboxed grader (several at once),
# then write the lesson's grades as CSV into the instructor's course folder.
#
#   sudo hub/autograde.sh LESSON [INSTRUCTOR]        e.g. sudo hub/autograde.sh 00_welcome
#
# Run it as root after the instructor's Collect (Formgrader tab): the sandbox (bubblewrap) runs
# each learner's code as the unprivileged user nobody, which needs root today. Everything it
# writes in the course folder goes back to the folder's owner, the instructor, who then
# generates and releases feedback from the Formgrader tab.
#
# The course folder is ~INSTRUCTOR/$IDIVKIT_COURSE_DIR (default idivkit/course; INSTRUCTOR
# defaults to the first of IDIVKIT_INSTRUCTORS), or $IDIVKIT_COURSE when set (the Kubernetes
# grading Job, hub/z2jh-grader.yaml). IDIVKIT_VENV: the environment with nbgrader and the
# course (default: this repository's .venv). IDIVKIT_MNIST: the MNIST file, if not in Keras's cache.
set -euo pipefail
usage="usage: sudo $0 LESSON [INSTRUCTOR]"
lesson=${1:?$usage}
hub=$(cd "$(dirname "$0")" && pwd)
venv=${IDIVKIT_VENV:-$hub/../.venv}

[ "$(id -u)" = 0 ] || { echo "error: run as root (the sandbox needs it): $usage" >&2; exit 1; }
if [ -n "${IDIVKIT_COURSE:-}" ]; then
  course=$IDIVKIT_COURSE
else
  instructors=${IDIVKIT_INSTRUCTORS:-instructor}
  instructor=${2:-${instructors%%,*}}
  home=$(getent passwd "$instructor" | cut -d: -f6) \
    || { echo "error: no user $instructor on this machine" >&2; exit 1; }
  course=$home/${IDIVKIT_COURSE_DIR:-idivkit/course}
fi
[ -f "$course/nbgrader_config.py" ] \
  || { echo "error: $course holds no nbgrader_config.py (the instructor's course folder)" >&2; exit 1; }
[ -d "$course/submitted" ] \
  || { echo "error: nothing collected in $course/submitted: Collect $lesson first" >&2; exit 1; }
[ -x "$venv/bin/nbgrader" ] \
  || { echo "error: no nbgrader in $venv: set IDIVKIT_VENV to the course's environment" >&2; exit 1; }
owner=$(stat -c %u:%g "$course")

# The grader reads the course's own nbgrader_config.py, and nothing from root's home or the
# working directory.
work=$(mktemp -d)
trap 'chown -R "$owner" "$course"; rm -rf "$work"' EXIT
cd "$work"
export JUPYTER_CONFIG_DIR="$work" JUPYTER_CONFIG_PATH="$hub" IDIVKIT_COURSE="$course" \
  IDIVKIT_EXCHANGE="${IDIVKIT_EXCHANGE:-/srv/nbgrader/exchange}" TF_CPP_MIN_LOG_LEVEL=2
# nbgrader's autograde of every collected submission, several at once (one per core; IDIVKIT_JOBS
# to choose), with the course's sandboxed Execute step; one CSV row per submission, with reasons.
"$venv/bin/idivkit-grade" autograde "$lesson" --course "$course" --out "$course/grades-$lesson.csv" \
  --quiet ${IDIVKIT_JOBS:+--jobs "$IDIVKIT_JOBS"}
