"""Checkpoint state: a hook's state in the checkpoint, restored on resume.

Saved as ``checkpoint['meta']['mmext'][<HookName>] = {'version': V,
'state': ...}`` and restored on **resume only**. mmengine calls
``after_load_checkpoint`` for ``load_from`` too (``Runner.load_checkpoint``
serves both, see ``Runner.load_or_resume``); a fine-tune from another run's
weights starts with fresh hook state. The state is applied after the hook's
own ``before_train`` (when ``runner.iter`` is the resumed iteration). The
layouts of earlier mmext versions (``legacy_state_keys``) are still read.
"""
from typing import Optional, Sequence

from mmengine.logging import print_log

from .failure_isolation import WARNING, IsolatedFailures

#: ``checkpoint['meta'][META_KEY][<hook>]`` holds the state of every mmext hook.
META_KEY = 'mmext'


def is_resuming(runner) -> bool:
    """True when the runner resumes training (``resume=True``).

    mmengine 0.10.7 loads both ``load_from`` and resume checkpoints through
    ``Runner.load_checkpoint``, which calls ``after_load_checkpoint``;
    ``Runner.load_or_resume`` goes through ``Runner.resume`` only when its
    ``_resume`` flag (the config's ``resume``) is set.
    """
    return bool(getattr(runner, '_resume', False))


class CheckpointState(IsolatedFailures):
    """Piece: :meth:`state_dict` in the checkpoint, back on resume.

    A failure does not touch the saved state: a resumed run starts with the
    hook enabled again and tries anew.

    Class attributes:

    - ``state_version`` (int): version of :meth:`state_dict`'s layout; a
      checkpoint with another version is not restored (one warning).
    - ``legacy_state_keys`` (tuple[str]): where earlier versions kept the
      state, read as ``state_version`` 1: ``'name'`` for
      ``checkpoint['name']``, ``'meta/name'`` for ``checkpoint['meta']``.
    """

    state_version: int = 1
    legacy_state_keys: Sequence[str] = ()
    _resumed_state: Optional[dict] = None  # state to apply in before_train

    def state_dict(self) -> Optional[dict]:
        """The hook's state for the checkpoint (None: nothing to save).

        Values must be plain Python/numpy/torch objects that ``torch.save``
        writes.
        """
        return None

    def load_state_dict(self, state: dict, runner) -> None:
        """Restore :meth:`state_dict`'s result on resume.

        Called after the hook's own ``before_train``, with ``runner.iter`` the
        resumed iteration.
        """

    def state_key(self, runner) -> str:
        """The hook's entry under ``checkpoint['meta']['mmext']``: its class
        name, with ``#k`` for the k-th other instance of the same class."""
        name = type(self).__name__
        same = [h for h in getattr(runner, 'hooks', []) if type(h) is type(
            self)]
        index = next((i for i, h in enumerate(same) if h is self), 0)
        return name if index == 0 else f'{name}#{index}'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store :meth:`state_dict` under ``meta['mmext'][<hook>]``."""
        state = self.state_dict()
        if state is None:
            return
        checkpoint.setdefault('meta', {}).setdefault(META_KEY, {})[
            self.state_key(runner)] = dict(version=self.state_version,
                                           state=state)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On resume, keep the saved state for ``before_train``."""
        entry = self._find_state(runner, checkpoint)
        if entry is None:
            return
        if not is_resuming(runner):
            print_log(f'{type(self).__name__}: the checkpoint is loaded as '
                      'weights (load_from), not resumed: the hook starts '
                      'with fresh state', logger='current', level=20)
            return
        version, state = entry
        if version != self.state_version:
            print_log(f'{type(self).__name__}: the checkpoint holds state '
                      f'version {version}, this version reads '
                      f'{self.state_version}: starting with fresh state',
                      logger='current', level=WARNING)
            return
        self._resumed_state = state

    def _find_state(self, runner, checkpoint: dict) -> Optional[tuple]:
        """(version, state) of this hook in ``checkpoint``, or None."""
        meta = checkpoint.get('meta') or {}
        entry = (meta.get(META_KEY) or {}).get(self.state_key(runner))
        if isinstance(entry, dict) and 'state' in entry:
            return entry.get('version'), entry['state']
        for key in self.legacy_state_keys:
            where, _, name = key.rpartition('/')
            state = (meta if where == 'meta' else checkpoint).get(name)
            if state:
                return 1, state
        return None

    def _on_train_start(self, runner) -> None:
        state, self._resumed_state = self._resumed_state, None
        if state is not None:
            self.load_state_dict(state, runner)
        super()._on_train_start(runner)
