"""A base hook that never crashes training: one warning, then disabled.

Monitoring hooks observe training; a bug in one of them (an unexpected log
key, a file system error, a model without the expected head) must not cost
the user a run of several days. :class:`SafeHook` wraps every lifecycle method
that a subclass defines: the first exception is logged as ONE warning naming
the hook, the lifecycle point and the error, and the hook is disabled for the
rest of the run (all its methods become no-ops, on this process).

Usage::

    @HOOKS.register_module()
    class MyMonitorHook(SafeHook):
        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            ...  # may raise; training goes on

Multi-process note: a hook that runs collectives (``mmengine.dist``) must
reach the same collectives on every rank. If a failure can happen on one rank
only, do the collective before the code that may fail, or accept that the
ranks then disagree about the hook being enabled (its later collectives
would deadlock). The mmext monitors therefore reduce first and compute after.
"""
import functools
import traceback
from typing import Any, Callable, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

# Every lifecycle point of mmengine's Hook that a subclass may override.
LIFECYCLE_METHODS = (
    'before_run', 'after_run', 'before_train', 'after_train', 'before_val',
    'after_val', 'before_test', 'after_test', 'before_save_checkpoint',
    'after_load_checkpoint', 'before_train_epoch', 'before_val_epoch',
    'before_test_epoch', 'after_train_epoch', 'after_val_epoch',
    'after_test_epoch', 'before_train_iter', 'before_val_iter',
    'before_test_iter', 'after_train_iter', 'after_val_iter',
    'after_test_iter')


class SafeHook(Hook):
    """Base class: an exception inside a hook method disables the hook.

    Subclasses override lifecycle methods as usual. ``__init_subclass__``
    wraps each one, so subclasses need no try/except of their own. After a
    failure, ``self.disabled`` is True, ``self.failure`` holds the message and
    every wrapped method returns None without running. A subclass that keeps
    resources (e.g. wrapped model methods) can override :meth:`on_disable` to
    release them.

    State saved in checkpoints is not touched by a failure: a resumed run
    starts with the hook enabled again and tries anew.
    """

    disabled: bool = False
    failure: Optional[str] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in LIFECYCLE_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, '_mmext_safe',
                                                  False):
                setattr(cls, name, _guarded(name, method))

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
        print_log(self.failure, logger='current', level=30)  # WARNING
        try:
            self.on_disable()
        except Exception:  # noqa: BLE001 - cleanup must not crash either
            pass

    def on_disable(self) -> None:
        """Release resources when the hook is disabled (default: nothing)."""


def _guarded(name: str, method: Callable) -> Callable:
    """Wrap ``method`` so that its exceptions disable the hook instead."""

    @functools.wraps(method)
    def wrapper(self: SafeHook, *args: Any, **kwargs: Any) -> Any:
        if self.disabled:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the whole point
            self.disable(name, error)
            return None

    wrapper._mmext_safe = True  # type: ignore[attr-defined]
    return wrapper
