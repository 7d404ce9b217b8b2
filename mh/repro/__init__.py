"""The companion's harness around the paper core: what only the notebooks and ``make reproduce`` use.

``workspace`` (notebook set-up: paths, data, training configs), ``run_cache`` (train-if-missing, reuse what
matches), ``tables`` (paper numbers beside measured ones), ``timings`` (measured tables kept until their code
changes), ``complexity`` (Table 4 with fvcore), ``gradcam`` (Grad-CAM for hashing), ``scaling`` (notebook 07's
index study), ``tuning`` (profile settings chosen on validation), ``reproduce`` (papermill over the notebooks),
``site`` and ``browser`` (the course site and its check), ``lab`` (JupyterLab on the project's kernel).
Nothing in ``mh`` outside this package imports it.
"""
