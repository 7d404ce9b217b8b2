"""The companion's harness around the paper core: what the notebooks and ``make reproduce`` use.

``profiles`` (how big, how long), ``workspace`` (notebook set-up), ``runs`` (train-if-missing, read a run),
``tables`` (paper numbers beside measured ones), ``manifest`` (where a number came from), ``complexity``
(Table 4 with fvcore), ``gradcam`` (Grad-CAM for hashing), ``reproduce`` (papermill over the notebooks).
"""
