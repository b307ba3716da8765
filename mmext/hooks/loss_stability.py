"""LossStabilityHook: loss level and noise against the run's own best window.

The user's monitoring plan (seed 004) asks for "loss variance < 3% (target
CV < 3%)", a stop when "loss variance increases > 10%" or "training loss
doesn't decrease for 5k iterations", and of course no run that keeps going
(and checkpointing) with NaN weights.

The raw coefficient of variation cannot carry the first two: with 3-image
batches the loss of one iteration differs from the next by 30-100% of its
value (measured on the demo), so "CV < 3%" fails in every window of a healthy
run (32 warnings in 800 iterations) and the CV's own sampling error over 100
iterations (about 7% relative) is close to "10% increase". What stays put in
a healthy run, once warm-up is over, is the *level* (the window median never
climbs far above the best one) and the *relative noise* (noise / level);
what an instability changes is exactly these two. See
:func:`window_stability` and :class:`LossStabilityHook` for the definition.
"""
import json
import math
import os.path as osp
from collections import deque
from typing import Deque, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from ..compat import save_checkpoint_now
from ..runs.files import LOSS_STABILITY
from .safe_hook import SafeHook

WARNING = 30
#: 1.4826 * MAD estimates a normal standard deviation; successive
#: differences have twice the variance of the values.
MAD_TO_STD = 1.4826 / math.sqrt(2.0)


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


def window_stability(values: Sequence[float]) -> Dict[str, float]:
    """Level and noise of one window of per-iteration loss values.

    ``level`` = median of the values. ``noise`` = 1.4826 * MAD of the
    successive differences / sqrt(2): the per-iteration standard deviation,
    robust to outliers and, being built on differences, blind to the slow
    trend of a loss that is still falling (a plain std of an early window
    would count the descent as noise). ``rel_noise`` = noise / level, the
    noise-based CV. ``level_se`` = 1.2533 * noise / sqrt(n), the standard
    error of the median of n values of that noise.

    Args:
        values: At least 3 consecutive loss values of one loss (any unit).

    Returns:
        ``level``, ``noise``, ``rel_noise`` (NaN for a level <= 0) and
        ``level_se``; ``noise`` and ``level_se`` in the loss's unit.
    """
    arr = np.asarray(values, dtype=np.float64)
    diffs = np.diff(arr)
    level = float(np.median(arr))
    noise = float(np.median(np.abs(diffs - np.median(diffs)))) * MAD_TO_STD
    return dict(level=level, noise=noise,
                rel_noise=noise / level if level > 0 else float('nan'),
                level_se=1.2533 * noise / math.sqrt(arr.size))


def stability_alarms(window: Dict[str, float], reference: Dict[str, float],
                     rise_thr: float, min_z: float,
                     noise_ratio_thr: float) -> Dict[str, float]:
    """Compare one window with the reference (the run's best window).

    Args:
        window: :func:`window_stability` of the current window.
        reference: :func:`window_stability` of the reference window.
        rise_thr: Relative level rise that warns (0.5: the median loss is 50%
            above the reference's).
        min_z: The rise must also exceed this many standard errors of the
            two medians together, so sampling noise alone cannot warn.
        noise_ratio_thr: Warn when ``rel_noise`` exceeds this multiple of the
            reference's.

    Returns:
        ``rise`` (relative), ``z`` (rise in standard errors), ``noise_ratio``
        and the booleans (0/1) ``level_alarm`` and ``noise_alarm``.
    """
    ref_level = reference['level']
    if not ref_level > 0:
        return dict(rise=float('nan'), z=float('nan'),
                    noise_ratio=float('nan'), level_alarm=0, noise_alarm=0)
    rise = window['level'] / ref_level - 1
    se = math.hypot(window['level_se'], reference['level_se'])
    diff = window['level'] - ref_level
    z = diff / se if se > 0 else (math.inf if diff > 0 else 0.0)
    ratio = (window['rel_noise'] / reference['rel_noise']
             if reference['rel_noise'] > 0 else float('nan'))
    return dict(rise=rise, z=z, noise_ratio=ratio,
                level_alarm=int(rise > rise_thr and z > min_z),
                noise_alarm=int(math.isfinite(ratio)
                                and ratio > noise_ratio_thr))


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
    """Loss level and noise per window, plateau and NaN/inf detection.

    Every iteration the loss components (averaged over all processes) are
    added to a window of the last ``window`` iterations, and the raw CV
    (std/|mean|) of each is logged as ``train/stability/cv/<loss>``
    (informational: with small batches it is 30-100% in a healthy run).
    Every ``window`` iterations (non-overlapping windows) each watched loss
    is summarised by :func:`window_stability` (median ``level``, robust
    per-iteration ``noise`` from successive differences, ``rel_noise`` =
    noise / level). After ``warmup_iters`` the window with the lowest level
    so far is the *reference*; a window warns (:func:`stability_alarms`) when

    - its level is more than ``rise_thr`` above the reference's (relative)
      and the rise is more than ``min_z`` standard errors: the loss climbed
      back, as after an LR spike or when pseudo labels turn to noise;
    - its relative noise is more than ``noise_ratio_thr`` times the
      reference's: the loss started to jump around;
    - the window mean of ``plateau_key`` has not reached a new low for
      ``patience_iters`` iterations (the user's "doesn't decrease for 5k
      iterations").

    A warning is given when a condition starts and again only after it has
    cleared, so a lasting instability warns once, not every window. The
    window's ``rise``, ``z`` and ``noise_ratio`` are logged as
    ``train/stability/{rise,z,noise_ratio}/<loss>``.

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
        warmup_iters (int, optional): No level/noise warnings before this
            iteration (the fast first descent is not a reference). Defaults
            to None: two windows.
        rise_thr (float): Relative level rise that warns. Defaults to 0.5.
        min_z (float): The rise must also be this many standard errors.
            Defaults to 4.0.
        noise_ratio_thr (float): Relative-noise multiple that warns.
            Defaults to 2.0.
        patience_iters (int): Iterations without a new lowest window level
            of ``plateau_key`` before warning. Defaults to 5000.
        watch_keys (list[str], optional): Losses whose warnings are raised.
            Defaults to None: ``loss``, ``sup_loss``, ``unsup_loss``. CVs of
            all components are logged either way.
        plateau_key (str): The loss checked for a plateau. Defaults to
            ``'loss'``.
        cv_thr (float, optional): The raw-CV rule of the first version: warn
            when a watched raw CV exceeds it. Defaults to None (off: it cannot
            hold with small batches).
        cv_increase_thr (float, optional): Raw-CV growth between windows that
            warns (first version). Defaults to None (off).
        out_file (str): Per-window numbers (level, noise, rise, z,
            noise_ratio, alarms of each watched loss) appended as JSON lines
            to this file in the work_dir (rank 0); empty: none. Defaults to
            ``'loss_stability.jsonl'``.
        stop_on_nonfinite (bool): Stop on NaN/inf. Defaults to True.
        stop_on_unstable (bool): Also stop on a level/noise warning.
            Defaults to False.
        stop_on_plateau (bool): Also stop on a plateau. Defaults to False.
    """

    priority = 'ABOVE_NORMAL'
    collective = True
    legacy_state_keys = ('mmext_loss_stability', )

    def __init__(self,
                 window: int = 100,
                 warmup_iters: Optional[int] = None,
                 rise_thr: float = 0.5,
                 min_z: float = 4.0,
                 noise_ratio_thr: float = 2.0,
                 patience_iters: int = 5000,
                 watch_keys: Optional[List[str]] = None,
                 plateau_key: str = 'loss',
                 cv_thr: Optional[float] = None,
                 cv_increase_thr: Optional[float] = None,
                 out_file: str = LOSS_STABILITY,
                 stop_on_nonfinite: bool = True,
                 stop_on_unstable: bool = False,
                 stop_on_plateau: bool = False) -> None:
        if not isinstance(window, int) or window < 2:
            raise ValueError(f'LossStabilityHook: window must be an int >= '
                             f'2, got {window!r}')
        for name, value in (('rise_thr', rise_thr), ('min_z', min_z),
                            ('noise_ratio_thr', noise_ratio_thr)):
            if not (isinstance(value, (int, float)) and value > 0
                    and math.isfinite(value)):
                raise ValueError(f'LossStabilityHook: {name} must be a '
                                 f'positive number, got {value!r}')
        self.window = window
        self.warmup_iters = 2 * window if warmup_iters is None else \
            warmup_iters
        self.rise_thr = rise_thr
        self.min_z = min_z
        self.noise_ratio_thr = noise_ratio_thr
        self.cv_thr = cv_thr
        self.cv_increase_thr = cv_increase_thr
        self.out_file = out_file
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
        self.reference: Dict[str, Dict[str, float]] = {}
        self.alarms: Dict[str, List[str]] = {}
        self.best_mean = math.inf
        self.best_iter = 0
        self.block_checkpoints = False

    # lifecycle --------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Guard the runner's checkpoint writer against poisoned weights.

        The guard is removed after training and when the hook is disabled.
        """

        def guard(original):
            def guarded_save(*args, **kwargs):
                if self.block_checkpoints and not self.disabled:
                    print_log('LossStabilityHook: checkpoint NOT written, '
                              'the weights are not finite',
                              logger='current', level=WARNING)
                    return None
                return original(*args, **kwargs)
            return guarded_save

        self.wrap_method(runner, 'save_checkpoint', guard)

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

    def state_dict(self) -> dict:
        """The windows, references, alarms and plateau best."""
        return dict(
            keys=self.keys,
            history={k: list(v) for k, v in self.history.items()},
            prev_cv=dict(self.prev_cv),
            reference={k: dict(v) for k, v in self.reference.items()},
            alarms={k: list(v) for k, v in self.alarms.items()},
            best_mean=self.best_mean,
            best_iter=self.best_iter)

    def load_state_dict(self, state: dict, runner) -> None:
        """Restore :meth:`state_dict`'s result (resume only)."""
        self.keys = state['keys']
        self.history = {k: deque(v, maxlen=self.window)
                        for k, v in state['history'].items()}
        self.prev_cv = dict(state['prev_cv'])
        self.reference = {k: dict(v) for k, v in
                          state.get('reference', {}).items()}
        self.alarms = {k: list(v) for k, v in state.get('alarms', {}).items()}
        self.best_mean = state['best_mean']
        self.best_iter = state['best_iter']

    def jsonl_files(self, runner) -> List[str]:
        """``<work_dir>/<out_file>`` on rank 0 (none when out_file is '')."""
        if not self.out_file or not dist.is_main_process():
            return []
        return [osp.join(runner.work_dir, self.out_file)]

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
        buf = self.all_reduce(buf)
        return {k: float(buf[0, i] / buf[1, i])
                for i, k in enumerate(self.keys) if buf[1, i] > 0}

    def _warn(self, runner, message: str) -> None:
        print_log(f'LossStabilityHook: iter {runner.iter + 1}: {message}',
                  logger='current', level=WARNING)

    def _stop(self, runner) -> None:
        runner.train_loop.stop_training = True

    def _on_nonfinite(self, runner, bad: Dict[str, float]) -> None:
        listed = ', '.join(f'{k}={v}' for k, v in sorted(bad.items()))
        finite = _weights_finite(self.model_of(runner))
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
            save_checkpoint_now(ckpt_hook, runner)
        self._warn(runner, 'training stopped with a final checkpoint')

    def _check_window(self, runner, cvs: Dict[str, float]) -> None:
        unstable = self._check_raw_cv(runner, cvs)
        now = runner.iter + 1
        record = {}
        for key in self.watch_keys:
            hist = self.history.get(key)
            if hist is None or len(hist) < self.window:
                continue
            current = window_stability(hist)
            record[key] = dict(current)
            if now <= self.warmup_iters:
                continue
            ref = self.reference.get(key)
            if ref is None or current['level'] < ref['level']:
                self.reference[key] = dict(current, iter=now)
                self.alarms[key] = []
                record[key]['reference'] = True
                continue
            result = stability_alarms(current, ref, self.rise_thr,
                                      self.min_z, self.noise_ratio_thr)
            record[key].update(result, reference_iter=ref['iter'])
            for name in ('rise', 'z', 'noise_ratio'):
                if math.isfinite(result[name]):
                    runner.message_hub.update_scalar(
                        f'train/stability/{name}/{key}', result[name])
            unstable |= self._raise_alarms(runner, key, current, ref, result)
        self._write_record(runner, now, record)
        plateau = self._check_plateau(runner)
        if (unstable and self.stop_on_unstable) or (plateau and
                                                    self.stop_on_plateau):
            self._warn(runner, 'training stopped (stop_on_unstable / '
                       'stop_on_plateau)')
            self._stop(runner)

    def _write_record(self, runner, now: int, record: dict) -> None:
        """Append the window's numbers to ``<work_dir>/<out_file>`` (rank 0)."""
        if not record or not self.out_file or not dist.is_main_process():
            return
        losses = {key: {k: (None if isinstance(v, float)
                            and not math.isfinite(v) else v)
                        for k, v in values.items()}
                  for key, values in record.items()}
        line = json.dumps(dict(iter=now, warmup=now <= self.warmup_iters,
                               losses=losses), allow_nan=False)
        with open(osp.join(runner.work_dir, self.out_file), 'a') as f:
            f.write(line + '\n')

    def _raise_alarms(self, runner, key: str, current: Dict[str, float],
                      ref: Dict[str, float], result: Dict[str, float]
                      ) -> bool:
        """Warn for alarms that just started; True if any alarm is on."""
        active = [n for n in ('level_alarm', 'noise_alarm') if result[n]]
        started = [n for n in active if n not in self.alarms.get(key, [])]
        self.alarms[key] = active
        where = f'(reference: the window ending at iter {int(ref["iter"])})'
        if 'level_alarm' in started:
            self._warn(runner, f'{key} rose to a median of '
                       f'{current["level"]:.4g} over the last {self.window} '
                       f'iterations, {result["rise"]:+.0%} above its best '
                       f'{ref["level"]:.4g} ({result["z"]:.1f} standard '
                       f'errors) {where}')
        if 'noise_alarm' in started:
            self._warn(runner, f'{key} noise is {current["rel_noise"]:.0%} '
                       f'of its level over the last {self.window} '
                       f'iterations, {result["noise_ratio"]:.1f}x the '
                       f'{ref["rel_noise"]:.0%} of its best window {where}')
        return bool(active)

    def _check_raw_cv(self, runner, cvs: Dict[str, float]) -> bool:
        """The first version's raw-CV rules, only when configured."""
        unstable = False
        for key in self.watch_keys:
            cv = cvs.get(key)
            if cv is None or not math.isfinite(cv):
                continue
            if self.cv_thr is not None and cv > self.cv_thr:
                unstable = True
                self._warn(runner, f'CV of {key} over the last {self.window} '
                           f'iterations is {cv:.2%} > {self.cv_thr:.2%}')
            prev = self.prev_cv.get(key)
            if (self.cv_increase_thr is not None and prev
                    and cv > prev * (1 + self.cv_increase_thr)):
                unstable = True
                self._warn(runner, f'CV of {key} grew from {prev:.2%} to '
                           f'{cv:.2%} (> {self.cv_increase_thr:.0%} increase)')
        self.prev_cv = dict(cvs)
        return unstable

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
