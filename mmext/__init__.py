"""mmext: an MMDetection 3.x extension for semi-supervised defect detection.

Importing mmext (or ``custom_imports=dict(imports=['mmext'])`` in an mmdet
config) registers every mmext hook, loss, model and runner in mmdet's
registries.
"""
__version__ = '0.1.0'

from . import data, utils  # noqa: E402,F401
from . import engine, hooks, losses, models  # noqa: E402,F401
