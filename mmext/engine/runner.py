"""A Runner whose resume works on torch >= 2.6 without trusting every file.

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, and
mmengine 0.10.7 calls ``torch.load`` without the argument, so ``resume=True``
fails on the MessageHub entry of every mmengine checkpoint: it holds
``HistoryBuffer`` objects whose statistics methods are pickled through
``getattr``, which no allowlist can admit safely. Turning the protection off
for every load would also unpickle arbitrary code from a ``load_from``
checkpoint that came from elsewhere. :class:`TrustedResumeRunner` loads with
``weights_only=False`` exactly when it resumes a checkpoint inside its own
work_dir (a file this runner wrote); every other load keeps torch's default.
"""
import os

import torch
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

#: Scheme of mmengine's CheckpointLoader for a checkpoint this run wrote.
TRUSTED_PREFIX = 'mmext-trusted://'


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
    """mmengine's Runner, with resume of its own work_dir working on torch >= 2.6.

    Use it from a config with ``runner_type = 'TrustedResumeRunner'`` (mmdet's
    ``tools/train.py`` and mmext's build it through the RUNNERS registry).
    ``load_from`` checkpoints and resumes from outside ``work_dir`` keep torch's
    ``weights_only=True`` protection untouched.
    """

    def resume(self, filename: str, *args, **kwargs) -> None:
        """Resume from ``filename``; trusted only inside ``self.work_dir``."""
        if os.path.isfile(filename) and is_inside(filename, self.work_dir):
            return super().resume(TRUSTED_PREFIX + filename, *args, **kwargs)
        self.logger.warning(
            f'Resuming from {filename}, which is outside the work_dir '
            f'{self.work_dir}: it is loaded with torch weights_only=True.')
        return super().resume(filename, *args, **kwargs)
