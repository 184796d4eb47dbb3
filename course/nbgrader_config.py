"""nbgrader configuration of the idivkit course.

Every path is relative to this folder (course/), whatever the working directory: the
``idivkit-grade`` command and a plain ``nbgrader ...`` run from here agree on where things are.

course/source/<NN_name>/<NN_name>.ipynb      instructor versions (solutions, hidden tests)
course/release/<NN_name>/<NN_name>.ipynb     student versions (generated; copied to lessons/)
course/submitted/<student>/<NN_name>/...     submissions placed by `idivkit-grade grade`
course/autograded/, course/feedback/         nbgrader's outputs
course/gradebook.db                          the gradebook (never committed)
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "idivkit"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# The course ships no exchange (no JupyterHub): keep nbgrader from probing /srv/nbgrader.
c.Exchange.root = os.path.join(HERE, "exchange")

# Generated student versions carry no outputs.
c.ClearOutput.enabled = True

# Autograding runs learner cells in a bubblewrap sandbox and the test cells in the grader
# (autograder/execute.py): nbgrader's own Execute step is replaced, the rest is nbgrader's.
c.Autograde.autograde_preprocessors = [
    "autograder.execute.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.SandboxedExecute.source_root = os.path.join(HERE, "source")
# Each cell has 120 s; a cell that runs longer is stopped, gets a CellTimeoutError and scores
# zero, and the rest of the notebook still runs (in a fresh sandbox, earlier cells replayed).
# The whole notebook has 30 minutes.
c.SandboxedExecute.timeout = 120
c.SandboxedExecute.notebook_timeout = 1800
# Feedback shows the visible part of each test and its message, never the hidden tests.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# A "### BEGIN HIDDEN TESTS" line a learner typed into a plain cell is removed too, rather than
# stopping their feedback.
c.ClearHiddenTests.enforce_metadata = False

# Plain nbgrader execution (validate in a learner's own kernel) keeps these settings.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 120
c.Execute.execute_retries = 0
# A kernel that dies (segfault, out of memory) fails that submission only.
c.Execute.raise_on_iopub_timeout = True

# Restore grade cells a learner deleted (the source of locked and test cells comes back from
# the gradebook anyway, so edits to them are undone).
c.OverwriteCells.add_missing_cells = True

# Keep error tracebacks in the feedback short and readable.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# The kernels' own warnings (e.g. "running over TCP without encryption" on a local machine)
# only clutter the grader's terminal; learners never see them.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
