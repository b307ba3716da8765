"""Did a change help? Per-class numbers of several runs, deltas with intervals.

An *arm* is one configuration trained with one or more seeds (one work_dir
per seed); the first arm is the control. For every run this module reads
what mmext's hooks and mmengine wrote into the work_dir:

- validations (``vis_data/scalars.json``): final and best (by teacher mAP)
  per-class AP of teacher and student, mAP and mAP50;
- ``pseudo_label_stats.jsonl``: kept ratio and precision per stage and class
  over the last ``window`` records;
- ``anchor_match_stats.jsonl``: RPN positives per GT box and the share of GT
  boxes without a positive, per class (last record);
- the training loss: mean and coefficient of variation of the logged
  ``loss`` over the last ``window`` log points.

Across seeds: mean, standard deviation and a paired comparison by seed
(seed s of an arm against seed s of the control: mean delta and a Student-t
95% interval). With predictions of every run on the same validation set,
:func:`~mmext.evaluation.bootstrap_ap.paired_bootstrap` gives the per-class AP
delta with a paired bootstrap interval over validation images.

Success criteria (:func:`parse_expectation`), as a user writes them:
``'Severe_Rust:ap>=0.03'``, ``'Chipped:ap50>0.1'``, ``'kept_ratio_cls:up'``,
``'Chipped:precision_cls:down'``, ``'mAP:up'``.
"""
import math
import operator
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmext.runs import WorkDir, files
from mmext.runs.pseudo_records import kept_ratio, precision, window_totals
from mmext.runs.validations import (classwise_ap, map_key_prefix,
                                monitored_map_key, read_work_dir_validations)
from mmext.utils import MMExtError

def _mean(values: Sequence[float]) -> Optional[float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def _validation_metrics(work_dir: str, class_names: Sequence[str]) -> dict:
    """Final and best per-class AP (teacher, student), mAP, mAP50, history."""
    records = read_work_dir_validations(work_dir)
    key = monitored_map_key(records)
    if key is None:
        raise MMExtError(f'{work_dir}: validations log no bbox_mAP')
    prefix = map_key_prefix(key)
    best = max((r for r in records if key in r and not math.isnan(r[key])),
               key=lambda r: r[key])
    out = {}
    for tag, rec in (('final', records[-1]), ('best', best)):
        per_model = classwise_ap(rec, class_names)
        for model, aps in per_model.items():
            for name in class_names:
                v = aps.get(name)
                out[f'{tag}_{model}_ap/{name}'] = (
                    None if v is None or math.isnan(v) or v < 0 else float(v))
        out[f'{tag}_mAP'] = rec.get(key)
        out[f'{tag}_mAP50'] = rec.get(f'{prefix}coco/bbox_mAP_50')
    out['history'] = [
        {'iter': r.get('step', r.get('iter')), 'mAP': r.get(key),
         **{n: classwise_ap(r, class_names).get(prefix.rstrip('/') or 'model',
                                                {}).get(n)
            for n in class_names}} for r in records]
    return out


def _pseudo_metrics(work_dir: str, class_names: Sequence[str],
                    window: int) -> dict:
    run = WorkDir(work_dir)
    path = run.file(files.PSEUDO_LABEL_STATS)
    recs = run.records(files.PSEUDO_LABEL_STATS)[-window:]
    try:
        return _pseudo_totals(recs, class_names)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise MMExtError(f'{path}: not a pseudo-label record '
                         f'({type(exc).__name__}: {exc})') from None


def _pseudo_totals(recs: List[dict], class_names: Sequence[str]) -> dict:
    out = {}
    if not recs:
        return out
    totals = window_totals(recs)
    for stage in totals['stages'][1:]:
        for name in list(class_names) + ['all']:
            out[f'kept_ratio_{stage}/{name}'] = kept_ratio(totals, stage, name)
            if 'tp' in recs[-1]:
                out[f'precision_{stage}/{name}'] = precision(
                    totals, stage, name)
    return out


def _anchor_metrics(work_dir: str, class_names: Sequence[str]) -> dict:
    run = WorkDir(work_dir)
    path = run.file(files.ANCHOR_MATCH_STATS)
    recs = run.records(files.ANCHOR_MATCH_STATS)
    out = {}
    if not recs:
        return out
    try:
        rpn = recs[-1].get('rpn', {})
        for name in list(class_names) + ['all']:
            row = rpn.get(name) or {}
            out[f'pos_per_gt/{name}'] = _number(row.get('pos_per_gt'))
            out[f'no_pos_share/{name}'] = _number(row.get('no_pos_share'))
    except (AttributeError, TypeError, ValueError) as exc:
        raise MMExtError(f'{path}: not an anchor-match record '
                         f'({type(exc).__name__}: {exc})') from None
    return out


def _number(v) -> Optional[float]:
    return None if v is None else float(v)


def _loss_metrics(work_dir: str, window: int) -> dict:
    last = np.asarray(WorkDir(work_dir).losses()[-window:], float)
    if not last.size:
        return {}
    mean = float(last.mean())
    return {'loss_mean': mean,
            'loss_cv': float(last.std() / mean) if mean else None}


def run_metrics(work_dir: str, class_names: Sequence[str],
                window: int = 5) -> dict:
    """Every per-run number compare_runs reports, flat ``name -> value``.

    Keys: ``final_teacher_ap/<cls>``, ``best_student_ap/<cls>``, ...,
    ``final_mAP``, ``final_mAP50``, ``kept_ratio_<stage>/<cls|all>``,
    ``precision_<stage>/<cls|all>``, ``pos_per_gt/<cls|all>``,
    ``no_pos_share/<cls|all>``, ``loss_mean``, ``loss_cv``; ``history``
    holds the per-class AP progression.

    Raises:
        MMExtError: the work_dir is missing or logged no validation.
    """
    out = _validation_metrics(work_dir, class_names)
    out.update(_pseudo_metrics(work_dir, class_names, window))
    out.update(_anchor_metrics(work_dir, class_names))
    out.update(_loss_metrics(work_dir, 10 * window))
    return out


def seed_statistics(control: Sequence[dict], arm: Sequence[dict],
                    key: str) -> dict:
    """Mean/std over seeds of ``key`` and the paired-by-seed delta.

    Returns:
        ``mean``, ``std``, ``n`` of the arm; ``delta`` (mean of arm seed s -
        control seed s over the seeds both have), ``delta_ci`` (Student-t
        95% interval, None with fewer than 2 pairs).
    """
    from scipy import stats
    values = [r.get(key) for r in arm]
    vals = [v for v in values if v is not None]
    out = {'mean': _mean(vals), 'std': float(np.std(vals, ddof=1))
           if len(vals) > 1 else None, 'n': len(vals),
           'delta': None, 'delta_ci': None}
    pairs = [(a.get(key), c.get(key)) for a, c in zip(arm, control)]
    diffs = np.array([a - c for a, c in pairs
                      if a is not None and c is not None], float)
    if diffs.size:
        out['delta'] = float(diffs.mean())
    if diffs.size > 1:
        half = stats.t.ppf(0.975, diffs.size - 1) * diffs.std(ddof=1) / \
            math.sqrt(diffs.size)
        out['delta_ci'] = [float(diffs.mean() - half),
                           float(diffs.mean() + half)]
    return out


@dataclass
class Expectation:
    """One success criterion: ``[class:]metric op value`` or ``... :up``."""
    text: str
    metric: str
    cls: str
    op: str
    value: Optional[float]


_EXPECT = re.compile(
    r'^(?:(?P<cls>[^:]+):)?(?P<metric>[A-Za-z0-9_]+)'
    r'(?:(?P<op>>=|<=|>|<|==)(?P<value>[-+0-9.eE]+)|:(?P<dir>up|down))$')
_OPS = {'>=': operator.ge, '<=': operator.le, '>': operator.gt,
        '<': operator.lt, '==': operator.eq}
#: Criterion metric -> run_metrics key (``{cls}`` filled in).
_METRIC_KEYS = {
    'ap': 'final_teacher_ap/{cls}', 'best_ap': 'best_teacher_ap/{cls}',
    'student_ap': 'final_student_ap/{cls}', 'mAP': 'final_mAP',
    'mAP50': 'final_mAP50', 'pos_per_gt': 'pos_per_gt/{cls}',
    'no_pos_share': 'no_pos_share/{cls}', 'loss_cv': 'loss_cv',
}


def parse_expectation(text: str) -> Expectation:
    """Parse ``'Severe_Rust:ap>=0.03'``, ``'kept_ratio_cls:up'``, ...

    Raises:
        MMExtError: not of the form ``[CLASS:]METRIC(OP VALUE|:up|:down)``.
    """
    m = _EXPECT.match(text.strip().replace(' ', ''))
    if not m:
        raise MMExtError(f'--expect {text!r}: expected [CLASS:]METRIC>=VALUE '
                         'or [CLASS:]METRIC:up|down')
    metric = m.group('metric')
    if metric not in _METRIC_KEYS and not re.match(
            r'^(kept_ratio|precision)_(initial|rpn|cls|reg)$', metric):
        raise MMExtError(
            f'--expect {text!r}: unknown metric {metric!r} (known: '
            f'{", ".join(sorted(_METRIC_KEYS))}, kept_ratio_<stage>, '
            'precision_<stage>)')
    op = m.group('op') or m.group('dir')
    value = float(m.group('value')) if m.group('value') else None
    return Expectation(text, metric, m.group('cls') or 'all', op, value)


def metric_key(exp: Expectation) -> str:
    """The run_metrics key a criterion reads."""
    template = _METRIC_KEYS.get(exp.metric, exp.metric + '/{cls}')
    return template.format(cls=exp.cls)


def check_expectations(expectations: Sequence[Expectation],
                       arms: Dict[str, List[dict]],
                       intervals: Optional[Dict[str, Dict[str, dict]]] = None
                       ) -> List[dict]:
    """Pass/fail of every criterion for every non-control arm.

    ``up``/``down`` compare the arm's mean over seeds with the control's;
    where a paired interval of the delta exists (bootstrap for AP, seeds
    otherwise) the row says whether it excludes 0 (``significant``).
    """
    names = list(arms)
    control = arms[names[0]]
    rows = []
    for exp in expectations:
        key = metric_key(exp)
        for arm in names[1:]:
            stats = seed_statistics(control, arms[arm], key)
            ctrl = _mean([r.get(key) for r in control])
            value = stats['mean']
            ci = stats['delta_ci']
            boot = (intervals or {}).get(arm, {}).get(exp.cls)
            if boot and exp.metric in ('ap', 'best_ap'):
                ci = [boot['ci_low'], boot['ci_high']]
            if value is None:
                passed = None
            elif exp.op in ('up', 'down'):
                passed = (value > ctrl) if exp.op == 'up' else (value < ctrl)
                passed = passed if ctrl is not None else None
            else:
                passed = _OPS[exp.op](value, exp.value)
            significant = None
            if ci is not None and None not in ci:
                significant = ci[0] > 0 or ci[1] < 0
            rows.append({'criterion': exp.text, 'arm': arm, 'value': value,
                         'control': ctrl, 'delta_ci': ci,
                         'significant': significant,
                         'result': {True: 'PASS', False: 'FAIL',
                                    None: 'n/a'}[passed]})
    return rows


def parse_arm(text: str) -> Tuple[str, List[str]]:
    """``NAME=WORK_DIR[,WORK_DIR...]`` -> (name, work_dirs).

    Raises:
        MMExtError: no ``=``, an empty name or no work_dir.
    """
    name, sep, dirs = text.partition('=')
    paths = [d for d in dirs.split(',') if d]
    if not sep or not name or not paths:
        raise MMExtError(f'arm {text!r}: expected NAME=WORK_DIR[,WORK_DIR...]')
    return name, paths


def comparison_rows(arms: Dict[str, List[dict]],
                    class_names: Sequence[str]) -> List[dict]:
    """Long table: one row per arm, class and metric, with seed statistics."""
    names = list(arms)
    control = arms[names[0]]
    keys = sorted({k for runs in arms.values() for r in runs for k in r
                   if k != 'history'})
    rows = []
    for arm in names:
        for key in keys:
            metric, _, cls = key.partition('/')
            st = seed_statistics(control, arms[arm], key)
            rows.append({'arm': arm, 'class': cls or 'all', 'metric': metric,
                         'mean': st['mean'], 'std': st['std'], 'n': st['n'],
                         'delta': st['delta'] if arm != names[0] else None,
                         'delta_ci_low': (st['delta_ci'] or [None])[0]
                         if arm != names[0] else None,
                         'delta_ci_high': (st['delta_ci'] or [None, None])[1]
                         if arm != names[0] else None})
    return rows


def check_same_classes(per_run_classes: Dict[str, Sequence[str]]) -> List[str]:
    """The common class list, or MMExtError naming the run that differs."""
    items = list(per_run_classes.items())
    ref_dir, ref = items[0]
    for work_dir, names in items[1:]:
        if list(names) != list(ref):
            raise MMExtError(f'{work_dir}: classes {list(names)} differ from '
                             f'{ref_dir}: {list(ref)} (runs of one '
                             'comparison need the same class list)')
    return list(ref)
