"""nbgrader on the course's JupyterHub: the shared exchange, for students and instructors.

Every single-user server reads this file: hub/jupyterhub_config.py puts this folder on
JUPYTER_CONFIG_PATH (on Kubernetes, hub/z2jh-values.yaml mounts it as
/etc/jupyter/nbgrader_config.py). Students only need the exchange and the course id to fetch,
submit and fetch feedback. An instructor's server also has IDIVKIT_COURSE (set by the hub): the
course folder, whose own nbgrader_config.py (course/nbgrader_config.py: paths, the sandboxed
autograder, feedback settings) is loaded here, with the exchange put back to the shared one.

Run the instructor's nbgrader commands from the home folder (or the Formgrader tab), not from
inside the course folder: nbgrader loads a nbgrader_config.py in the working directory last, and
the course's own file points the exchange at a private folder for use without a hub.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

EXCHANGE = os.environ.get("IDIVKIT_EXCHANGE", "/srv/nbgrader/exchange")
COURSE = os.environ.get("IDIVKIT_COURSE", "")

if COURSE:
    course_config = os.path.join(COURSE, "nbgrader_config.py")
    if not os.path.isfile(course_config):
        raise FileNotFoundError(
            f"IDIVKIT_COURSE={COURSE} holds no nbgrader_config.py: clone the course repository "
            f"there (its course/ folder), or set IDIVKIT_COURSE_DIR for the hub")
    load_subconfig(course_config)  # noqa: F821 (provided by traitlets)

c.CourseDirectory.course_id = "idivkit"
c.Exchange.root = EXCHANGE
# One course per hub: a student fetches a lesson into ~/<lesson>, not ~/idivkit/<lesson>.
c.Exchange.path_includes_course = False
