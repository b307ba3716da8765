"""A Runner whose checkpoints load on torch >= 2.6 without trusting every file.

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, and
mmengine 0.10.7 calls ``torch.load`` without the argument, so both
``resume=True`` and ``load_from`` of an mmengine checkpoint fail on its
MessageHub entry: ``HistoryBuffer`` objects, numpy arrays, and the buffers'
statistics methods pickled through ``getattr``. Turning the protection off for
every load would unpickle arbitrary code from a checkpoint that came from
elsewhere. :class:`TrustedResumeRunner` instead

- loads every checkpoint with ``weights_only=True`` plus an allowlist of
  exactly the types mmengine writes (:func:`mmengine_safe_globals`; its
  ``getattr`` only reaches HistoryBuffer's statistics methods), and
- resumes a checkpoint inside its own work_dir (a file this run wrote, which
  may hold state of user hooks of any type) with ``weights_only=False``.
"""
import collections
import contextlib
import os
import pickle
from typing import Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

#: Scheme of mmengine's CheckpointLoader for a checkpoint this run wrote.
TRUSTED_PREFIX = 'mmext-trusted://'


def history_buffer_getattr(obj: object, name: str) -> object:
    """``getattr`` restricted to what a pickled HistoryBuffer needs.

    HistoryBuffer keeps its statistics methods (``mean``, ``min``, ...) in a
    dict, which pickle stores as ``getattr(HistoryBuffer, 'mean')``.
    """
    allowed = {'min', 'max', 'mean', 'current'} | set(
        HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def mmengine_safe_globals() -> List[object]:
    """The non-tensor globals of an mmengine checkpoint, safe to allowlist."""
    dtypes = {type(np.dtype(code)) for code in np.typecodes['All']}
    return [
        HistoryBuffer,
        collections.Counter,
        np.ndarray,
        np.dtype,
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
        *sorted(dtypes, key=lambda t: t.__name__),
        (history_buffer_getattr, 'builtins.getattr'),
    ]


@contextlib.contextmanager
def mmengine_checkpoint_loading() -> Iterator[None]:
    """Let ``torch.load(weights_only=True)`` read mmengine checkpoints.

    Does nothing on torch < 2.5, which has no allowlist (and loads without the
    restriction anyway).
    """
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is None:
        yield
        return
    with safe_globals(mmengine_safe_globals()):
        yield


@CheckpointLoader.register_scheme(prefixes=TRUSTED_PREFIX)
def load_trusted_checkpoint(filename: str, map_location=None) -> dict:
    """Load a checkpoint of the run's own work_dir with full unpickling.

    Args:
        filename: ``mmext-trusted://`` followed by a local path.
        map_location: Same as :func:`torch.load`.
    """
    path = filename[len(TRUSTED_PREFIX):]
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    return torch.load(path, map_location=map_location, weights_only=False)


def is_inside(path: str, folder: str) -> bool:
    """True when ``path`` lies inside ``folder`` (after resolving links)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


@RUNNERS.register_module()
class TrustedResumeRunner(Runner):
    """mmengine's Runner, with checkpoint loading that works on torch >= 2.6.

    Use it from a config with ``runner_type = 'TrustedResumeRunner'`` (mmdet's
    ``tools/train.py`` and mmext's build it through the RUNNERS registry).
    ``load_from`` checkpoints and resumes from outside ``work_dir`` keep
    ``weights_only=True``, with only mmengine's own types allowed.
    """

    def load_checkpoint(self, filename: str, *args, **kwargs) -> dict:
        """Load weights (``load_from``) with mmengine's types allowlisted."""
        with mmengine_checkpoint_loading():
            return super().load_checkpoint(filename, *args, **kwargs)

    def resume(self, filename: str, *args, **kwargs) -> None:
        """Resume from ``filename``; fully trusted only inside ``work_dir``."""
        if os.path.isfile(filename) and is_inside(filename, self.work_dir):
            return super().resume(TRUSTED_PREFIX + filename, *args, **kwargs)
        self.logger.warning(
            f'Resuming from {filename}, which is outside the work_dir '
            f'{self.work_dir}: it is loaded with torch weights_only=True.')
        return super().resume(filename, *args, **kwargs)
