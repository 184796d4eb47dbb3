"""JupyterHub configuration of the idivkit course: one class, nbgrader's exchange.

One machine, as root, from a clone of this repository set up with `bash scripts/setup.sh`:

    npm ci --prefix hub                                  # the proxy, pinned in hub/package.json
    .venv/bin/jupyterhub -f hub/jupyterhub_config.py

Everyone logs in with a system account (PAM) and gets a JupyterLab server that runs as that
account, started from the hub's own Python environment (this repository's .venv: nbgrader, the
course's kernels, idivkit). Every server reads hub/nbgrader_config.py, which points nbgrader at
the shared exchange: students fetch, submit and fetch feedback from the Assignments tab, the
instructor generates, releases and collects, then returns feedback from the Formgrader tab, and
`sudo hub/autograde.sh LESSON` autogrades with the course's sandboxed grader. On Kubernetes,
hub/z2jh-values.yaml embeds this same file as hub.extraConfig (KubeSpawner then starts the
servers; the parts marked "one machine" are skipped). docs/classroom.md has the whole recipe;
tests/test_hub.py drives a class through a real hub started from this file.

Set for your class, in the hub's environment (or edit the defaults here):

IDIVKIT_INSTRUCTORS   comma-separated user names of the instructors (default: instructor)
IDIVKIT_STUDENTS      comma-separated user names of the students (empty: anyone who can log in)
IDIVKIT_EXCHANGE      nbgrader's exchange, a folder everyone can write (default /srv/nbgrader/exchange)
IDIVKIT_COURSE_DIR    the instructor's course folder, relative to their home (default
                      idivkit/course: a clone of this repository in ~/idivkit)
"""

import os
import sys

# traitlets provides c (and get_config) to a config file; Zero to JupyterHub runs this file
# inside its own, where c exists and get_config is another function.
c = globals()["c"] if "c" in globals() else get_config()  # noqa: F821

HUB_DIR = os.path.dirname(os.path.abspath(__file__))
ON_KUBERNETES = "KUBERNETES_SERVICE_HOST" in os.environ  # Zero to JupyterHub's hub pod


def _names(variable, default=""):
    return {name.strip() for name in os.environ.get(variable, default).split(",") if name.strip()}


INSTRUCTORS = _names("IDIVKIT_INSTRUCTORS", "instructor")
STUDENTS = _names("IDIVKIT_STUDENTS")
EXCHANGE = os.environ.get("IDIVKIT_EXCHANGE", "/srv/nbgrader/exchange")
COURSE_DIR = os.environ.get("IDIVKIT_COURSE_DIR", "idivkit/course")

# -- who may log in -------------------------------------------------------------------------
c.Authenticator.admin_users = set(INSTRUCTORS)
if STUDENTS:
    c.Authenticator.allowed_users = STUDENTS | INSTRUCTORS
else:
    c.Authenticator.allow_all = True

# -- every single-user server ---------------------------------------------------------------
c.Spawner.default_url = "/lab"
c.Spawner.environment.update({"IDIVKIT_EXCHANGE": EXCHANGE, "TF_CPP_MIN_LOG_LEVEL": "2"})
for _name in ("IDIVKIT_MNIST", "KERAS_BACKEND"):
    if os.environ.get(_name):
        c.Spawner.environment.update({_name: os.environ[_name]})

# Students get the Assignments tab (fetch, Validate, submit, feedback); only instructors get
# the Formgrader, and only their servers load the course folder (IDIVKIT_COURSE, read by
# hub/nbgrader_config.py).
INSTRUCTOR_ONLY = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")


def course_roles(spawner):
    name = spawner.user.name
    if name in INSTRUCTORS:
        home = "/home/jovyan" if ON_KUBERNETES else os.path.expanduser(f"~{name}")
        spawner.environment["IDIVKIT_COURSE"] = os.path.join(home, COURSE_DIR)
    else:
        spawner.environment.pop("IDIVKIT_COURSE", None)
        spawner.args = [*spawner.args,
                        *(f"--ServerApp.jpserver_extensions={ext}=False" for ext in INSTRUCTOR_ONLY)]


c.Spawner.pre_spawn_hook = course_roles

# -- one machine: local servers, local proxy ------------------------------------------------
if not ON_KUBERNETES:
    # The hub's own environment runs every server; servers listen on loopback only, behind
    # the proxy. nbgrader finds hub/nbgrader_config.py through JUPYTER_CONFIG_PATH.
    c.Spawner.cmd = [os.path.join(sys.prefix, "bin", "jupyterhub-singleuser")]
    c.Spawner.ip = "127.0.0.1"
    c.Spawner.notebook_dir = "~"
    c.Spawner.environment.update({"JUPYTER_CONFIG_PATH": HUB_DIR})
    c.Spawner.http_timeout = 120
    c.Spawner.start_timeout = 120
    # configurable-http-proxy, pinned in hub/package.json: `npm ci --prefix hub` puts it here.
    _chp = os.path.join(HUB_DIR, "node_modules", ".bin", "configurable-http-proxy")
    if os.path.exists(_chp):
        c.ConfigurableHTTPProxy.command = [_chp]
    # Stop every server and the proxy with the hub.
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
