"""Reading a training run: the one place that knows a work_dir's layout.

Below both :mod:`mmext.hooks` (which write with :mod:`.files`' names) and
the evaluation, experiments and investigation rooms (which read through :class:`WorkDir`). Imports neither
torch nor mmdet.
"""
from . import files
from .work_dir import WorkDir, find_run_config

__all__ = ['WorkDir', 'files', 'find_run_config']
