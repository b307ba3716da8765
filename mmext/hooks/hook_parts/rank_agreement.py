"""Rank agreement: a collective hook is switched off on every rank together.

A hook that runs collectives in ``after_train_iter`` (``collective = True``)
must reach them on every rank, so a failure on one rank must switch it off
on all ranks at once. An exception on one rank of a multi-process run is
deferred: the hook goes quiet on that rank, and at the start of the next
``after_train_iter`` every rank reduces the failure flags (one element,
:meth:`RankAgreement.all_reduce`) and all of them disable together. The data
reductions of :meth:`RankAgreement.all_reduce` carry the same flag. Errors
in code the model calls go through :meth:`RankAgreement.run_deferred`:
never raised into the model, reported at the next reduction, on every rank.

A collective hook reduces first and computes after, so that no rank can fail
between the failure-flag reduction and its own data collective.
"""
from typing import Any, Callable, Optional

import numpy as np
import torch
from mmengine import dist

from .failure_isolation import IsolatedFailures

# Points after which no mmext hook runs a collective: a deferred failure can
# disable the hook there on its own rank.
_FINAL_METHODS = ('after_train', 'after_run')


class AgreedFailure(RuntimeError):
    """Raised on every rank by :meth:`RankAgreement.all_reduce` when a rank
    failed.

    Attributes:
        where: What failed on this rank, or None on the other ranks.
        original: The rank's own exception, or None on the other ranks.
    """

    def __init__(self, message: str, where: Optional[str] = None,
                 original: Optional[BaseException] = None) -> None:
        super().__init__(message)
        self.where = where
        self.original = original


class RankAgreement(IsolatedFailures):
    """Piece: failures of a collective hook are agreed over all ranks.

    Class attributes:

    - ``collective`` (bool): the hook runs collectives in
      ``after_train_iter``. Defaults to False (a failure disables the hook
      on its own rank at once, as :class:`IsolatedFailures` does).
    """

    collective: bool = False
    _deferred: Optional[tuple] = None  # (where, exception) of this rank

    @property
    def active(self) -> bool:
        """False once the hook is disabled or has a failure to report."""
        return not self.disabled and self._deferred is None

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

    def _guard_enter(self, name: str) -> bool:
        if not super()._guard_enter(name):
            return False
        if self._deferred is not None and name in _FINAL_METHODS:
            self.disable(*self._deferred)
            return False
        if self.collective and name == 'after_train_iter':
            self._sync_failures()
        # quiet until every rank agrees to disable
        return self._deferred is None

    def _guard_error(self, name: str, error: BaseException) -> None:
        if isinstance(error, AgreedFailure):
            self.disable(error.where or name, error.original or error)
        elif self.collective and dist.get_world_size() > 1:
            self.defer_failure(name, error)
        else:
            self.disable(name, error)
