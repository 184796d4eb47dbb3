# nbgrader's Validate button (in a learner's JupyterLab) reads nbgrader_config.py from Jupyter's
# config path: give it the course's settings (cell time limits), wherever a lesson is opened.
import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)
load_subconfig(  # noqa: F821
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "course", "nbgrader_config.py")
)
