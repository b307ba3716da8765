"""Failure isolation: an exception inside a hook switches the hook off.

Monitoring hooks observe training; a bug in one of them (an unexpected log
key, a file system error, a model without the expected head) must not cost
the user a run of several days. :class:`IsolatedFailures` wraps every
lifecycle method a subclass defines: the first exception is logged as ONE
warning naming the hook, the lifecycle point and the error, and the hook is
disabled for the rest of the run (all its methods become no-ops).
"""
import functools
import traceback
from typing import Any, Callable, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

WARNING = 30

#: Every lifecycle point of mmengine's Hook that a subclass may override.
LIFECYCLE_METHODS = (
    'before_run', 'after_run', 'before_train', 'after_train', 'before_val',
    'after_val', 'before_test', 'after_test', 'before_save_checkpoint',
    'after_load_checkpoint', 'before_train_epoch', 'before_val_epoch',
    'before_test_epoch', 'after_train_epoch', 'after_val_epoch',
    'after_test_epoch', 'before_train_iter', 'before_val_iter',
    'before_test_iter', 'after_train_iter', 'after_val_iter',
    'after_test_iter')


class IsolatedFailures(Hook):
    """Base piece: an exception inside a hook method disables the hook.

    Subclasses override lifecycle methods as usual. ``__init_subclass__``
    wraps each one, so subclasses need no try/except of their own. After a
    failure, ``self.disabled`` is True, ``self.failure`` holds the message
    and every wrapped method returns None without running. A subclass that
    keeps other resources overrides :meth:`on_disable` to release them.

    Other pieces extend the policy through :meth:`_guard_enter` and
    :meth:`_guard_error`, and the training boundaries through
    :meth:`_on_train_start` / :meth:`_on_train_end` (cooperative ``super()``
    calls).
    """

    disabled: bool = False
    failure: Optional[str] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in LIFECYCLE_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, '_mmext_safe',
                                                  False):
                setattr(cls, name, guarded(name, _with_boundaries(
                    name, method)))

    @property
    def active(self) -> bool:
        """False once the hook is disabled."""
        return not self.disabled

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
        try:
            self._on_disabled()
        except Exception:  # noqa: BLE001 - cleanup must not crash either
            pass

    def on_disable(self) -> None:
        """Release resources when the hook is disabled (default: nothing)."""

    def _on_disabled(self) -> None:
        """Cleanup chain of the pieces; ends with :meth:`on_disable`."""
        self.on_disable()

    def _guard_enter(self, name: str) -> bool:
        """Whether lifecycle method ``name`` runs (False: a no-op)."""
        return not self.disabled

    def _guard_error(self, name: str, error: BaseException) -> None:
        """What an exception in lifecycle method ``name`` does."""
        self.disable(name, error)

    def _on_train_start(self, runner) -> None:
        """After the subclass's ``before_train`` (pieces extend it)."""

    def _on_train_end(self, runner) -> None:
        """After the subclass's ``after_train``, even when it raised."""

    def before_train(self, runner) -> None:
        """The pieces' start-of-training steps."""
        self._on_train_start(runner)

    def after_train(self, runner) -> None:
        """The pieces' end-of-training steps."""
        self._on_train_end(runner)


def _with_boundaries(name: str, method: Callable) -> Callable:
    """Add the pieces' steps to a subclass's ``before_train`` (after it) and
    ``after_train`` (after it, even when it raised)."""
    if name == 'before_train':
        @functools.wraps(method)
        def before_train(self: IsolatedFailures, runner, *args, **kwargs):
            result = method(self, runner, *args, **kwargs)
            self._on_train_start(runner)
            return result
        return before_train
    if name == 'after_train':
        @functools.wraps(method)
        def after_train(self: IsolatedFailures, runner, *args, **kwargs):
            try:
                return method(self, runner, *args, **kwargs)
            finally:
                self._on_train_end(runner)
        return after_train
    return method


def guarded(name: str, method: Callable) -> Callable:
    """Wrap ``method`` so that its exceptions go to the hook's policy
    (:meth:`IsolatedFailures._guard_error`) instead of into training."""

    @functools.wraps(method)
    def wrapper(self: IsolatedFailures, *args: Any, **kwargs: Any) -> Any:
        try:
            if not self._guard_enter(name):
                return None
            return method(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the whole point
            self._guard_error(name, error)
        return None

    wrapper._mmext_safe = True  # type: ignore[attr-defined]
    return wrapper


for _name in ('before_train', 'after_train'):
    setattr(IsolatedFailures, _name,
            guarded(_name, getattr(IsolatedFailures, _name)))
del _name
