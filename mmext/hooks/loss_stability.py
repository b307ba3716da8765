"""LossStabilityHook: sliding-window coefficient of variation of every loss.

The user's monitoring plan (seed 004) asks for "loss variance < 3% (target
CV < 3%)", a stop when "loss variance increases > 10%" or "training loss
doesn't decrease for 5k iterations", and of course no run that keeps going
(and checkpointing) with NaN weights. This hook measures all of it from the
log variables the model returns each iteration.
"""
import math
from collections import deque
from typing import Deque, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from .safe_hook import SafeHook

WARNING = 30
CHECKPOINT_KEY = 'mmext_loss_stability'


def coefficient_of_variation(values: Sequence[float]) -> float:
    """CV = population std / |mean| of ``values`` (NaN when the mean is 0).

    Args:
        values: Loss values of consecutive iterations (any unit).

    Returns:
        The dimensionless ratio std/|mean|; 0.03 means 3%.
    """
    arr = np.asarray(values, dtype=np.float64)
    mean = abs(float(arr.mean()))
    return float(arr.std()) / mean if mean > 0 else float('nan')


def loss_components(log_vars: Dict[str, object]) -> Dict[str, float]:
    """The loss entries of a model's log variables, plus sup/unsup totals.

    SoftTeacher logs ``sup_loss_*`` and ``unsup_loss_*`` (and ``loss``, their
    weighted sum); the totals ``sup_loss`` and ``unsup_loss`` are added so the
    two branches can be judged separately. Non-loss entries (``acc``) are
    left out.

    Args:
        log_vars: The ``outputs`` of ``train_step`` (name -> tensor/float).

    Returns:
        Name -> float value.
    """
    values = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
              for k, v in log_vars.items() if 'loss' in k}
    for branch in ('sup', 'unsup'):
        parts = [v for k, v in values.items()
                 if k.startswith(f'{branch}_loss_')]
        if parts:
            values[f'{branch}_loss'] = float(sum(parts))
    return values


@HOOKS.register_module()
class LossStabilityHook(SafeHook):
    """Sliding-window CV of each loss, plateau and NaN/inf detection.

    Every iteration the loss components (averaged over all processes) are
    added to a window of the last ``window`` iterations; once it is full the
    CV (std/|mean|) of each component is put into the MessageHub as
    ``train/stability/cv/<loss>``, so mmengine's LogProcessor prints it and
    writes it to ``vis_data/scalars.json`` as ``stability/cv/<loss>``.
    Every ``window`` iterations (non-overlapping windows) it warns when

    - the CV of a watched loss is above ``cv_thr`` (the user: 3%),
    - the CV grew by more than ``cv_increase_thr`` (relative, the user: 10%)
      since the previous window,
    - the window mean of ``plateau_key`` has not gone below its best for
      ``patience_iters`` iterations (the user: 5000).

    A non-finite loss is checked every iteration. Training then stops
    cleanly (mmengine's own mechanism, as in ``EarlyStoppingHook``:
    ``runner.train_loop.stop_training = True``) in the same
    ``after_train_iter``, which runs before ``CheckpointHook`` (priority
    ``ABOVE_NORMAL`` vs ``VERY_LOW``). If the weights are still finite a final
    checkpoint is written through the CheckpointHook; if they are not, the
    CheckpointHook is silenced and every other checkpoint write of this run
    is refused, so no poisoned file replaces the last good one and
    ``last_checkpoint`` keeps naming it (``--resume`` restarts from there).

    Args:
        window (int): Iterations per window. Defaults to 100.
        cv_thr (float): Warn when a watched CV exceeds this. Defaults to 0.03.
        cv_increase_thr (float): Warn when a watched CV grows by more than
            this fraction between consecutive windows. Defaults to 0.10.
        patience_iters (int): Iterations without a new lowest window mean of
            ``plateau_key`` before warning. Defaults to 5000.
        watch_keys (list[str], optional): Losses whose CV warnings are raised.
            Defaults to None: ``loss``, ``sup_loss``, ``unsup_loss``. CVs of
            all components are logged either way.
        plateau_key (str): The loss checked for a plateau. Defaults to
            ``'loss'``.
        stop_on_nonfinite (bool): Stop on NaN/inf. Defaults to True.
        stop_on_unstable (bool): Also stop on a CV warning. Defaults to False.
        stop_on_plateau (bool): Also stop on a plateau. Defaults to False.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 window: int = 100,
                 cv_thr: float = 0.03,
                 cv_increase_thr: float = 0.10,
                 patience_iters: int = 5000,
                 watch_keys: Optional[List[str]] = None,
                 plateau_key: str = 'loss',
                 stop_on_nonfinite: bool = True,
                 stop_on_unstable: bool = False,
                 stop_on_plateau: bool = False) -> None:
        if window < 2:
            raise ValueError(f'LossStabilityHook: window must be >= 2, '
                             f'got {window}')
        self.window = window
        self.cv_thr = cv_thr
        self.cv_increase_thr = cv_increase_thr
        self.patience_iters = patience_iters
        self.watch_keys = list(watch_keys or ['loss', 'sup_loss',
                                              'unsup_loss'])
        self.plateau_key = plateau_key
        self.stop_on_nonfinite = stop_on_nonfinite
        self.stop_on_unstable = stop_on_unstable
        self.stop_on_plateau = stop_on_plateau
        self.keys: Optional[List[str]] = None
        self.history: Dict[str, Deque[float]] = {}
        self.prev_cv: Dict[str, float] = {}
        self.best_mean = math.inf
        self.best_iter = 0
        self.block_checkpoints = False
        self._runner_save = None

    # lifecycle --------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Guard the runner's checkpoint writer against poisoned weights."""
        original = runner.save_checkpoint
        self._runner_save = (runner, original)

        def guarded_save(*args, **kwargs):
            if self.block_checkpoints and not self.disabled:
                print_log('LossStabilityHook: checkpoint NOT written, the '
                          'weights are not finite', logger='current',
                          level=WARNING)
                return None
            return original(*args, **kwargs)

        runner.save_checkpoint = guarded_save

    def after_train(self, runner) -> None:
        """Give the runner its own save_checkpoint back."""
        self.on_disable()

    def on_disable(self) -> None:
        """Remove the checkpoint guard."""
        if self._runner_save is not None:
            runner, _ = self._runner_save
            runner.__dict__.pop('save_checkpoint', None)
            self._runner_save = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Reduce this iteration's losses, log CVs, check NaN and windows."""
        if not outputs:
            return
        values = self._reduce(loss_components(outputs))
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            self._on_nonfinite(runner, bad)
            return
        for key, value in values.items():
            self.history.setdefault(key, deque(maxlen=self.window)).append(
                value)
        cvs = {k: coefficient_of_variation(h) for k, h in self.history.items()
               if len(h) == self.window}
        for key, cv in cvs.items():
            runner.message_hub.update_scalar(f'train/stability/cv/{key}', cv)
        if cvs and (runner.iter + 1) % self.window == 0:
            self._check_window(runner, cvs)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the windows and the plateau state in the checkpoint."""
        checkpoint[CHECKPOINT_KEY] = dict(
            keys=self.keys,
            history={k: list(v) for k, v in self.history.items()},
            prev_cv=dict(self.prev_cv),
            best_mean=self.best_mean,
            best_iter=self.best_iter)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the state saved by :meth:`before_save_checkpoint`."""
        state = checkpoint.get(CHECKPOINT_KEY)
        if not state:
            return
        self.keys = state['keys']
        self.history = {k: deque(v, maxlen=self.window)
                        for k, v in state['history'].items()}
        self.prev_cv = dict(state['prev_cv'])
        self.best_mean = state['best_mean']
        self.best_iter = state['best_iter']

    # helpers ----------------------------------------------------------------
    def _reduce(self, values: Dict[str, float]) -> Dict[str, float]:
        """Average over processes (one all_reduce of a small vector).

        The key list is fixed from the first iteration (the union over ranks),
        so every rank reduces a vector of the same length; a rank without a
        key contributes to neither its sum nor its count. A NaN on any rank
        makes the average NaN on every rank, so all ranks stop together.
        """
        if dist.get_world_size() == 1:
            return values
        if self.keys is None:
            gathered = dist.all_gather_object(sorted(values))
            self.keys = sorted(set().union(*gathered))
        buf = torch.zeros(2, len(self.keys), dtype=torch.float64)
        for i, key in enumerate(self.keys):
            if key in values:
                buf[0, i] = values[key]
                buf[1, i] = 1
        dist.all_reduce(buf, op='sum')
        return {k: float(buf[0, i] / buf[1, i])
                for i, k in enumerate(self.keys) if buf[1, i] > 0}

    def _warn(self, runner, message: str) -> None:
        print_log(f'LossStabilityHook: iter {runner.iter + 1}: {message}',
                  logger='current', level=WARNING)

    def _stop(self, runner) -> None:
        runner.train_loop.stop_training = True

    def _on_nonfinite(self, runner, bad: Dict[str, float]) -> None:
        listed = ', '.join(f'{k}={v}' for k, v in sorted(bad.items()))
        finite = _weights_finite(runner.model)
        self._warn(runner, f'non-finite loss ({listed}); weights are '
                   f'{"finite" if finite else "NOT finite"}')
        if not self.stop_on_nonfinite:
            return
        self._stop(runner)
        if not finite:
            self.block_checkpoints = True
            _silence_checkpoint_hooks(runner)
            self._warn(runner, 'training stopped; no checkpoint is written '
                       'from now on (the last one on disk is clean)')
            return
        ckpt_hook = _checkpoint_hook(runner)
        due = ckpt_hook is not None and not ckpt_hook.by_epoch and (
            ckpt_hook.every_n_train_iters(runner, ckpt_hook.interval,
                                          ckpt_hook.save_begin))
        if ckpt_hook is not None and not due:
            ckpt_hook._save_checkpoint(runner)
        self._warn(runner, 'training stopped with a final checkpoint')

    def _check_window(self, runner, cvs: Dict[str, float]) -> None:
        unstable = False
        for key in self.watch_keys:
            cv = cvs.get(key)
            if cv is None or not math.isfinite(cv):
                continue
            if cv > self.cv_thr:
                unstable = True
                self._warn(runner, f'CV of {key} over the last {self.window} '
                           f'iterations is {cv:.2%} > {self.cv_thr:.2%}')
            prev = self.prev_cv.get(key)
            if prev and cv > prev * (1 + self.cv_increase_thr):
                unstable = True
                self._warn(runner, f'CV of {key} grew from {prev:.2%} to '
                           f'{cv:.2%} (> {self.cv_increase_thr:.0%} increase)')
        self.prev_cv = dict(cvs)
        plateau = self._check_plateau(runner)
        if (unstable and self.stop_on_unstable) or (plateau and
                                                    self.stop_on_plateau):
            self._warn(runner, 'training stopped (stop_on_unstable / '
                       'stop_on_plateau)')
            self._stop(runner)

    def _check_plateau(self, runner) -> bool:
        hist = self.history.get(self.plateau_key)
        if not hist:
            return False
        mean = float(np.mean(hist))
        now = runner.iter + 1
        if mean < self.best_mean:
            self.best_mean, self.best_iter = mean, now
            return False
        if now - self.best_iter >= self.patience_iters:
            self._warn(runner, f'{self.plateau_key} has not decreased for '
                       f'{now - self.best_iter} iterations (best window mean '
                       f'{self.best_mean:.4g} at iter {self.best_iter})')
            return True
        return False


def _weights_finite(model: torch.nn.Module) -> bool:
    """True when every parameter of ``model`` is finite."""
    if is_model_wrapper(model):
        model = model.module
    with torch.no_grad():
        return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _silence_checkpoint_hooks(runner) -> None:
    """Make every CheckpointHook of the runner a no-op from now on.

    Blocking ``runner.save_checkpoint`` alone is not enough: CheckpointHook
    deletes old checkpoints before saving (``max_keep_ckpts``) and writes the
    ``last_checkpoint`` pointer after, which would then name a missing file.
    """
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook):
            for name in ('after_train_iter', 'after_train_epoch',
                         'after_val_epoch', 'after_train'):
                setattr(hook, name, _do_nothing)


def _do_nothing(*args, **kwargs) -> None:
    """Replaces a silenced hook method."""


def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
    """The runner's CheckpointHook, or None."""
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook):
            return hook
    return None
