"""From PseudoLabelStatsHook's recommendation to a per-class-threshold config.

:func:`write_threshold_config` writes a config that ``_base_``s a run's own
config, switches the model to :class:`~mmext.models.PerClassSoftTeacher` and
sets the recommended per-class thresholds of the chosen stages. The
recommendation is a threshold on the teacher's *raw* scores, so where a class's
``pseudo_label_initial_score_thr`` is not below it, the initial threshold of
that class is lowered to ``margin`` below it: otherwise the initial filter
would already have dropped the boxes the stage should keep, and the stage
threshold would do nothing.
"""
import os
import os.path as osp
import pprint
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config

from mmext.utils import MMExtError
from mmext.checks.config_check import PSEUDO_THRESHOLD_KEYS

#: Recommendation column per target.
TARGET_COLUMNS = {'precision': 'thr_for_precision',
                  'kept-ratio': 'thr_for_kept_ratio'}
STAGE_KEY = {'rpn': 'rpn_pseudo_thr', 'cls': 'cls_pseudo_thr'}


def _per_class(value, num_classes: int, what: str) -> List[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)] * num_classes
    if isinstance(value, (list, tuple)) and len(value) == num_classes:
        return [float(v) for v in value]
    raise MMExtError(f'{what}: expected a float or {num_classes} floats to '
                     f'start from, got {value!r}')


def threshold_override(semi_train_cfg: dict, rows: Sequence[dict],
                       target: str = 'precision',
                       stages: Sequence[str] = ('rpn', 'cls'),
                       margin: float = 0.05) -> Dict[str, List[float]]:
    """New per-class values of the pseudo-threshold keys.

    Args:
        semi_train_cfg: The run's ``semi_train_cfg`` (current thresholds: a
            float or per-class list per key).
        rows: ``recommend_thresholds`` rows, one per class in label order.
        target: ``'precision'`` or ``'kept-ratio'``: which recommendation.
        stages: Stages to set (``rpn``, ``cls``).
        margin: How far below a stage threshold a lowered initial threshold
            goes.

    Returns:
        ``semi_train_cfg`` key -> per-class list, for the keys that change.
        A class without a recommendation keeps its current value.

    Raises:
        MMExtError: unknown target/stage, or current thresholds that are
            policies (nothing fixed to start from).
    """
    if target not in TARGET_COLUMNS:
        raise MMExtError(f'target must be one of {", ".join(TARGET_COLUMNS)}'
                         f', got {target!r}')
    unknown = [s for s in stages if s not in STAGE_KEY]
    if unknown:
        raise MMExtError(f'stages: unknown {", ".join(unknown)} (rpn, cls)')
    num = len(rows)
    column = TARGET_COLUMNS[target]
    initial_key = PSEUDO_THRESHOLD_KEYS[0]
    initial = _per_class(semi_train_cfg.get(initial_key, 0.0), num,
                         initial_key)
    out: Dict[str, List[float]] = {}
    lowest_needed = list(initial)
    for stage in stages:
        key = STAGE_KEY[stage]
        current = _per_class(semi_train_cfg.get(key, initial[0]), num, key)
        values = []
        for c, row in enumerate(rows):
            thr = row.get(column)
            values.append(round(float(thr), 4) if thr is not None
                          else current[c])
            if thr is not None:
                lowest_needed[c] = min(lowest_needed[c], values[c] - margin)
        out[key] = values
    new_initial = [round(max(0.0, v), 4) for v in lowest_needed]
    if new_initial != initial:
        out[initial_key] = new_initial
    return out


def delayed(semi_train_cfg: dict, values: Dict[str, List[float]],
            warmup_iters: int) -> Dict[str, dict]:
    """The new values as ``fixed`` policies that start at ``warmup_iters``
    (the run's own thresholds before), so a run from scratch is the stock
    run until its teacher is as far as the one the values were measured on.
    """
    out = {}
    for key, vals in values.items():
        current = semi_train_cfg.get(key)
        out[key] = dict(_delete_=True, type='fixed', values=vals,
                        warmup_thr=current, warmup_iters=int(warmup_iters),
                        update_interval=1)
    return out


def write_threshold_config(cfg_path: str, out_path: str,
                           rows: Sequence[dict], target: str = 'precision',
                           stages: Sequence[str] = ('rpn', 'cls'),
                           header: str = '',
                           model_type: str = 'PerClassSoftTeacher',
                           warmup_iters: int = 0) -> str:
    """Write ``out_path``: ``cfg_path`` with per-class pseudo thresholds.

    Args:
        cfg_path: The run's config (``_base_``, written relative to
            ``out_path``).
        out_path: The new config (``.py``).
        rows: ``recommend_thresholds`` rows in label order.
        target: ``'precision'`` or ``'kept-ratio'``.
        stages: Stages to set.
        header: Comment lines (without ``#``) at the top.
        model_type: The per-class model to switch to; a model that already
            has per-class thresholds (e.g. your mixin subclass) is kept.
        warmup_iters: 0: the per-class lists from iteration 0. N > 0: each
            changed key becomes a ``fixed`` policy that keeps the run's own
            value until iteration N (see :func:`delayed`), and
            ``PseudoThresholdHook`` is added to ``custom_hooks``.

    Returns:
        ``out_path``.

    Raises:
        MMExtError: the config is not a semi-supervised one, or the stage
            thresholds are not fixed values.
    """
    cfg = Config.fromfile(cfg_path)
    model = cfg.get('model') or {}
    semi = model.get('semi_train_cfg')
    if not isinstance(semi, dict):
        raise MMExtError(f'{cfg_path}: model has no semi_train_cfg (not a '
                         'Soft Teacher config)')
    values = threshold_override(semi, rows, target, stages)
    from mmext.checks.config_check import _per_class_model
    keep_type = _per_class_model(str(model.get('type', ''))) is True
    override: dict = {} if keep_type else {'type': model_type}
    override['semi_train_cfg'] = (delayed(semi, values, warmup_iters)
                                  if warmup_iters > 0 else values)
    base = osp.relpath(osp.abspath(cfg_path),
                       osp.dirname(osp.abspath(out_path)))
    lines = [f'# {line}' for line in header.splitlines()]
    lines.append(f'_base_ = [{base!r}]')
    lines.append('')
    lines.append('model = ' + pprint.pformat(override, width=88,
                                             sort_dicts=False))
    hooks = list(cfg.get('custom_hooks') or [])
    if warmup_iters > 0 and not any(h.get('type') == 'PseudoThresholdHook'
                                    for h in hooks):
        hooks.append(dict(type='PseudoThresholdHook'))
        # mmengine replaces lists: the run's hooks, then the threshold hook
        lines.append('custom_hooks = ' + pprint.pformat(
            [h.to_dict() if hasattr(h, 'to_dict') else h for h in hooks],
            width=88, sort_dicts=False))
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return out_path


def recommendation_header(rows: Sequence[dict], target: str,
                          source: Optional[str] = None) -> str:
    """The comment block of a written config: where the numbers came from."""
    column = TARGET_COLUMNS[target]
    parts = [f'{r["class"]} {r[column]:.2f}' if r.get(column) is not None
             else f'{r["class"]} (none: kept)' for r in rows]
    text = (f'Per-class pseudo-label thresholds ({target} target) from '
            f'{source or "PseudoLabelStatsHook"}:\n' + ', '.join(parts))
    return text
