"""mmext: an MMDetection 3.x extension for semi-supervised defect detection.

Importing mmext (or ``custom_imports=dict(imports=['mmext'])`` in an mmdet
config) registers every mmext hook, loss, model and runner in mmdet's
registries.
"""
__version__ = '0.1.0'

import os

from . import data, utils  # noqa: E402,F401


def register_all_modules() -> None:
    """Import (and so register) every mmext hook, loss, model, runner and
    dataset; :mod:`mmext` does this on import unless told not to."""
    from . import engine, hooks, losses, models  # noqa: F401
    from .data import voc_folder_dataset  # noqa: F401


# A tool that only reads files (anchor_fit --ann, threshold_sweep, ...) sets
# MMEXT_NO_REGISTER=1 before its first mmext import: registration imports
# torch and mmdet (seconds, ~500 MB). The variable is consumed here so that
# processes the tool starts register as usual.
if os.environ.pop('MMEXT_NO_REGISTER', '') != '1':
    register_all_modules()
