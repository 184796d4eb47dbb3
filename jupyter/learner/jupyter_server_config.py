# Learner settings that need a path: JupyterLab's settings overrides live beside this file
# (jupyter/learner/lab-settings/overrides.json), found wherever the repository is.
import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)
c.LabApp.app_settings_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab-settings")
