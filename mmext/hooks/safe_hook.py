"""The foundation of the mmext hooks: never crash a run, resume exactly.

Monitoring hooks observe training; a bug in one of them (an unexpected log
key, a file system error, a model without the expected head) must not cost
the user a run of several days. :class:`SafeHook` wraps every lifecycle method
that a subclass defines: the first exception is logged as ONE warning naming
the hook, the lifecycle point and the error, and the hook is disabled for the
rest of the run (all its methods become no-ops).

It also gives every hook the same answers to what each of them used to write
itself:

- **Checkpoint state** (:meth:`SafeHook.state_dict` /
  :meth:`SafeHook.load_state_dict`): saved as
  ``checkpoint['meta']['mmext'][<HookName>] = {'version': V, 'state': ...}``
  and restored on **resume only**. mmengine calls ``after_load_checkpoint``
  for ``load_from`` too (``Runner.load_checkpoint`` serves both, see
  ``Runner.load_or_resume``); a fine-tune from another run's weights starts
  with fresh hook state. The state is applied after the hook's own
  ``before_train`` (when ``runner.iter`` is the resumed iteration). The
  layouts of earlier mmext versions (``legacy_state_keys``) are still read.
- **JSON-lines outputs** (:meth:`SafeHook.jsonl_files`): at the start of
  training every file is cut to the records with ``iter <= runner.iter``:
  on resume the records up to the checkpoint stay and the resumed run writes
  the rest once; a fresh run (``runner.iter == 0``) starts them empty.
- **Model patching** (:meth:`SafeHook.wrap_method`): instance-level wrappers,
  removed automatically after ``after_train`` and when the hook is disabled.
- :meth:`SafeHook.model_of` (the model inside a DDP wrapper) and
  :meth:`SafeHook.dataset_classes` (from the train dataset's metainfo).
- **Multi-process failures** (``collective = True``): a hook that runs
  collectives in ``after_train_iter`` must reach them on every rank, so a
  failure on one rank must switch the hook off on all ranks together. For
  such a hook, an exception on one rank of a multi-process run is deferred:
  the hook goes quiet on that rank and at the start of the next
  ``after_train_iter`` every rank reduces the failure flags (one element,
  :meth:`SafeHook.all_reduce`) and all of them disable together. The data
  reductions of :meth:`SafeHook.all_reduce` carry the same flag. Errors in
  code the model calls (wrapped methods) go through
  :meth:`SafeHook.run_deferred`: never raised into the model, reported at the
  next reduction, on every rank.

Usage::

    @HOOKS.register_module()
    class MyMonitorHook(SafeHook):
        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            ...  # may raise; training goes on

        def state_dict(self):
            return dict(total=self.total)

        def load_state_dict(self, state, runner):
            self.total = state['total']

A collective hook reduces first and computes after, so that no rank can fail
between the failure-flag reduction and its own data collective.
"""
import functools
import json
import os
import traceback
from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

WARNING = 30

#: ``checkpoint['meta'][META_KEY][<hook>]`` holds the state of every mmext hook.
META_KEY = 'mmext'

# Every lifecycle point of mmengine's Hook that a subclass may override.
LIFECYCLE_METHODS = (
    'before_run', 'after_run', 'before_train', 'after_train', 'before_val',
    'after_val', 'before_test', 'after_test', 'before_save_checkpoint',
    'after_load_checkpoint', 'before_train_epoch', 'before_val_epoch',
    'before_test_epoch', 'after_train_epoch', 'after_val_epoch',
    'after_test_epoch', 'before_train_iter', 'before_val_iter',
    'before_test_iter', 'after_train_iter', 'after_val_iter',
    'after_test_iter')

# Points after which no mmext hook runs a collective: a deferred failure can
# disable the hook there on its own rank.
_FINAL_METHODS = ('after_train', 'after_run')


class AgreedFailure(RuntimeError):
    """Raised on every rank by :meth:`SafeHook.all_reduce` when a rank failed.

    Attributes:
        where: What failed on this rank, or None on the other ranks.
        original: The rank's own exception, or None on the other ranks.
    """

    def __init__(self, message: str, where: Optional[str] = None,
                 original: Optional[BaseException] = None) -> None:
        super().__init__(message)
        self.where = where
        self.original = original


def is_resuming(runner) -> bool:
    """True when the runner resumes training (``resume=True``).

    mmengine 0.10.7 loads both ``load_from`` and resume checkpoints through
    ``Runner.load_checkpoint``, which calls ``after_load_checkpoint``;
    ``Runner.load_or_resume`` goes through ``Runner.resume`` only when its
    ``_resume`` flag (the config's ``resume``) is set.
    """
    return bool(getattr(runner, '_resume', False))


def truncate_jsonl(path: str, last_iter: int) -> Optional[int]:
    """Keep the records of a JSON-lines file with ``iter <= last_iter``.

    Lines that are not JSON objects (e.g. the torn tail of a killed run) are
    dropped with the later records.

    Args:
        path: The file; nothing happens when it does not exist.
        last_iter: Last iteration to keep (1-based, as the records count).

    Returns:
        The number of records kept, or None when there is no file.
    """
    if not os.path.isfile(path):
        return None
    kept = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(
                    record.get('iter'), int) and record['iter'] <= last_iter:
                kept.append(json.dumps(record) + '\n')
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(kept)
    return len(kept)


class SafeHook(Hook):
    """Base class: an exception inside a hook method disables the hook.

    Subclasses override lifecycle methods as usual. ``__init_subclass__``
    wraps each one, so subclasses need no try/except of their own. After a
    failure, ``self.disabled`` is True, ``self.failure`` holds the message and
    every wrapped method returns None without running. A subclass that keeps
    other resources can override :meth:`on_disable` to release them; methods
    wrapped with :meth:`wrap_method` are restored by the base class.

    A failure does not touch the state saved in checkpoints: a resumed run
    starts with the hook enabled again and tries anew.

    Class attributes for subclasses:

    - ``collective`` (bool): the hook runs collectives in
      ``after_train_iter`` (see the module docstring). Defaults to False.
    - ``state_version`` (int): version of :meth:`state_dict`'s layout; a
      checkpoint with another version is not restored (one warning).
    - ``legacy_state_keys`` (tuple[str]): where earlier versions kept the
      state, read as ``state_version`` 1: ``'name'`` for
      ``checkpoint['name']``, ``'meta/name'`` for ``checkpoint['meta']``.
    """

    collective: bool = False
    state_version: int = 1
    legacy_state_keys: Sequence[str] = ()

    disabled: bool = False
    failure: Optional[str] = None
    _deferred: Optional[tuple] = None      # (where, exception) of this rank
    _resumed_state: Optional[dict] = None  # state to apply in before_train

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in LIFECYCLE_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, '_mmext_safe',
                                                  False):
                setattr(cls, name, _guarded(name, _with_base(name, method)))

    # ---------------------------------------------------------- failures
    @property
    def active(self) -> bool:
        """False once the hook is disabled or has a failure to report."""
        return not self.disabled and self._deferred is None

    def disable(self, where: str, error: BaseException) -> None:
        """Log one warning and switch the hook off for the rest of the run.

        Args:
            where (str): The lifecycle point (method name) that failed.
            error (BaseException): The exception it raised.
        """
        if self.disabled:
            return
        self.disabled = True
        last = traceback.extract_tb(error.__traceback__)[-1:]
        location = (f' at {last[0].filename}:{last[0].lineno}'
                    if last else '')
        self.failure = (f'{type(self).__name__} disabled after an internal '
                        f'error in {where}: {type(error).__name__}: {error}'
                        f'{location}. Training continues without it.')
        print_log(self.failure, logger='current', level=WARNING)
        for cleanup in (self.restore_methods, self.on_disable):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - cleanup must not crash either
                pass

    def on_disable(self) -> None:
        """Release resources when the hook is disabled (default: nothing)."""

    def defer_failure(self, where: str, error: BaseException) -> None:
        """Remember an error, to disable the hook on every rank together.

        The first error is kept; :meth:`all_reduce` and the start of the next
        ``after_train_iter`` raise it on this rank and a failure on the others.

        Args:
            where: What failed (a lifecycle point or a wrapped method).
            error: The exception.
        """
        if self._deferred is None:
            self._deferred = (where, error)

    def run_deferred(self, where: str, fn: Callable, *args: Any,
                     **kwargs: Any) -> Any:
        """Run ``fn``; an exception is deferred (:meth:`defer_failure`).

        For code that runs inside the model's methods: it must never raise
        into training. Does nothing once the hook is not :attr:`active`.

        Returns:
            ``fn``'s result, or None when it failed or did not run.
        """
        if not self.active:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - reported at the reduction
            self.defer_failure(where, error)
            return None

    def all_reduce(self, data, op: str = 'sum'):
        """Reduce ``data`` over processes, carrying this rank's failure flag.

        One collective: the data with a flag appended (1 where this rank has a
        deferred failure). When any rank failed, every rank raises
        :class:`AgreedFailure` (the failing rank with its own error), so all
        of them disable the hook together. In a single process nothing is
        communicated, and a deferred failure raises as well.

        Args:
            data: numpy array or torch tensor (any shape; reduced as float64).
            op: ``'sum'``, ``'mean'`` or ``'max'`` (mmengine's names).

        Returns:
            The reduced values, of the type and shape of ``data`` (float64).

        Raises:
            AgreedFailure: some rank (maybe this one) had a deferred failure.
        """
        if op not in ('sum', 'mean', 'max'):
            raise ValueError(f'all_reduce: op must be sum, mean or max, got '
                             f'{op!r} (the failure flag would be lost)')
        is_numpy = isinstance(data, np.ndarray)
        values = torch.as_tensor(np.asarray(data) if is_numpy else data)
        shape = values.shape
        vec = torch.cat([values.detach().cpu().double().reshape(-1),
                         torch.tensor([float(self._deferred is not None)],
                                      dtype=torch.float64)])
        if dist.get_world_size() > 1:
            dist.all_reduce(vec, op=op)
        if vec[-1] > 0:
            self._raise_agreed()
        out = vec[:-1].reshape(shape)
        return out.numpy() if is_numpy else out

    def _raise_agreed(self) -> None:
        if self._deferred is not None:
            where, error = self._deferred
            raise AgreedFailure(f'{where}: {type(error).__name__}: {error}',
                                where, error)
        raise AgreedFailure(f'{type(self).__name__} failed on another '
                            'process; switched off on every process')

    def _sync_failures(self) -> None:
        """The failure-flag reduction at the start of ``after_train_iter``."""
        if dist.get_world_size() > 1 or self._deferred is not None:
            self.all_reduce(torch.zeros(0, dtype=torch.float64))

    # ------------------------------------------------------------ helpers
    @staticmethod
    def model_of(runner) -> torch.nn.Module:
        """The runner's model, unwrapped from DDP (``.module``)."""
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @staticmethod
    def dataset_classes(runner, num_classes: Optional[int] = None) -> List[str]:
        """Class names from the train dataset's metainfo.

        Args:
            runner: The runner.
            num_classes: The model's number of classes. When given, names of
                another length are not used. When None, it is read from the
                detector's box head (student of a semi-supervised model) if
                the dataset has no class names.

        Returns:
            The names, or ``class_0 ... class_{n-1}``.
        """
        try:
            meta = runner.train_dataloader.dataset.metainfo or {}
            names = list(meta.get('classes') or [])
        except Exception:  # noqa: BLE001 - any dataset without metainfo
            names = []
        if names and (num_classes is None or len(names) == num_classes):
            return names
        if num_classes is None:
            model = SafeHook.model_of(runner)
            detector = getattr(model, 'student', model)
            head = getattr(getattr(detector, 'roi_head', None), 'bbox_head',
                           None) or getattr(detector, 'bbox_head')
            num_classes = head.num_classes
        return [f'class_{i}' for i in range(num_classes)]

    def wrap_method(self, owner: object, name: str,
                    make: Callable[[Callable], Callable]) -> None:
        """Replace ``owner.name`` by ``make(original)`` on the instance only.

        The class and other instances keep their method. The replacement is
        removed again by :meth:`restore_methods`, which runs after
        ``after_train`` and when the hook is disabled.

        Args:
            owner: Object whose method is wrapped (a module, the runner).
            name: Method name.
            make: Gets the original bound method, returns the replacement.
        """
        original = getattr(owner, name)
        before = owner.__dict__.get(name, _MISSING)
        replacement = make(original)
        setattr(owner, name, replacement)
        if '_wrapped' not in self.__dict__:
            self._wrapped: List[tuple] = []
        self._wrapped.append((owner, name, replacement, before))

    def restore_methods(self) -> None:
        """Undo :meth:`wrap_method`, latest first (a wrapper installed over
        ours by someone else is left in place)."""
        wrapped = self.__dict__.get('_wrapped', [])
        while wrapped:
            owner, name, replacement, before = wrapped.pop()
            if owner.__dict__.get(name) is not replacement:
                continue
            if before is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, before)

    # -------------------------------------------------- checkpoint state
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

    def jsonl_files(self, runner) -> List[str]:
        """JSON-lines files this process appends records (``iter``) to."""
        return []

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

    def _start_outputs(self, runner) -> None:
        """After ``before_train``: apply a resumed state, cut the files."""
        state, self._resumed_state = self._resumed_state, None
        if state is not None:
            self.load_state_dict(state, runner)
        for path in self.jsonl_files(runner):
            truncate_jsonl(path, runner.iter)

    def before_train(self, runner) -> None:
        """Apply a resumed state and cut the JSON-lines files."""
        self._start_outputs(runner)

    def after_train(self, runner) -> None:
        """Give the wrapped methods back."""
        self.restore_methods()


_MISSING = object()


def _with_base(name: str, method: Callable) -> Callable:
    """Add the base class's part to a subclass's ``before_train`` (resumed
    state, files; after it) and ``after_train`` (restore methods)."""
    if name == 'before_train':
        @functools.wraps(method)
        def before_train(self: SafeHook, runner, *args, **kwargs):
            result = method(self, runner, *args, **kwargs)
            self._start_outputs(runner)
            return result
        return before_train
    if name == 'after_train':
        @functools.wraps(method)
        def after_train(self: SafeHook, runner, *args, **kwargs):
            try:
                return method(self, runner, *args, **kwargs)
            finally:
                self.restore_methods()
        return after_train
    return method


def _guarded(name: str, method: Callable) -> Callable:
    """Wrap ``method`` so that its exceptions disable the hook instead."""

    @functools.wraps(method)
    def wrapper(self: SafeHook, *args: Any, **kwargs: Any) -> Any:
        if self.disabled:
            return None
        if self._deferred is not None and name in _FINAL_METHODS:
            self.disable(*self._deferred)
            return None
        try:
            if self.collective and name == 'after_train_iter':
                self._sync_failures()
            if self._deferred is not None:
                return None  # quiet until every rank agrees to disable
            return method(self, *args, **kwargs)
        except AgreedFailure as error:
            self.disable(error.where or name, error.original or error)
        except Exception as error:  # noqa: BLE001 - the whole point
            if self.collective and dist.get_world_size() > 1:
                self.defer_failure(name, error)
            else:
                self.disable(name, error)
        return None

    wrapper._mmext_safe = True  # type: ignore[attr-defined]
    return wrapper


for _name in ('before_train', 'after_train', 'before_save_checkpoint',
              'after_load_checkpoint'):
    setattr(SafeHook, _name, _guarded(_name, getattr(SafeHook, _name)))
del _name
