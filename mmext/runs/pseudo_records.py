"""Pseudo-label records read back: window totals and recommended thresholds.

A record is one line of ``<work_dir>/pseudo_label_stats.jsonl``, written by
:class:`~mmext.hooks.PseudoLabelStatsHook` (schema in
:mod:`mmext.hooks.pseudo_label_stats`). Everything here is numpy and JSON, so
reading a run never imports torch.
"""
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils import MMExtError, read_jsonl
from ..utils.tables import format_table


def safe_ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den > 0 else None


#: Columns of the recommendation table (rows of recommend_thresholds).
THRESHOLD_COLUMNS = ('class', 'raw_boxes', 'thr_for_precision', 'precision',
                     'recall', 'kept_ratio', 'thr_for_kept_ratio',
                     'kept_ratio_at_thr')



def recommend_thresholds(hist: np.ndarray,
                         tp_hist: Optional[np.ndarray],
                         fp_hist: Optional[np.ndarray],
                         num_gt: Optional[np.ndarray],
                         class_names: Sequence[str],
                         target_precision: float = 0.7,
                         target_kept_ratio: float = 0.3) -> List[dict]:
    """Per class, the score threshold reaching a target precision/kept ratio.

    Thresholds are histogram bin edges ``k / B``; keeping the boxes with
    ``score >= k / B`` is what a filter ``score > thr`` keeps, to one bin.

    * ``thr_for_precision``: the lowest edge whose kept raw boxes reach
      ``target_precision`` (the lowest such edge keeps the most true boxes);
      None without ground truth or when no edge reaches it.
    * ``thr_for_kept_ratio``: the highest edge that still keeps at least
      ``target_kept_ratio`` of the teacher's raw boxes of the class.

    Args:
        hist: (C, B) raw teacher score histograms.
        tp_hist: (C, B) raw boxes matched to a GT, or None.
        fp_hist: (C, B) raw boxes matched to nothing, or None.
        num_gt: (C,) GT boxes of the images seen, or None.
        class_names: Class names.
        target_precision: Precision to reach, in [0, 1].
        target_kept_ratio: Fraction of raw boxes to keep, in [0, 1].

    Returns:
        One dict per class: ``class``, ``raw_boxes``, ``thr_for_precision``,
        ``precision``, ``recall``, ``kept_ratio`` (at that threshold),
        ``thr_for_kept_ratio``, ``kept_ratio_at_thr``.
    """
    hist = np.asarray(hist, np.float64)
    num_bins = hist.shape[1]
    kept = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # boxes with bin >= k
    out = []
    for c, name in enumerate(class_names):
        total = kept[c, 0]
        row = {'class': name, 'raw_boxes': int(total),
               'thr_for_precision': None, 'precision': None, 'recall': None,
               'kept_ratio': None, 'thr_for_kept_ratio': None,
               'kept_ratio_at_thr': None}
        if total > 0:
            ok = np.flatnonzero(kept[c] / total >= target_kept_ratio)
            k = int(ok.max())
            row['thr_for_kept_ratio'] = k / num_bins
            row['kept_ratio_at_thr'] = float(kept[c, k] / total)
        if tp_hist is not None and total > 0:
            tp = np.cumsum(np.asarray(tp_hist[c], np.float64)[::-1])[::-1]
            fp = np.cumsum(np.asarray(fp_hist[c], np.float64)[::-1])[::-1]
            judged = tp + fp
            with np.errstate(invalid='ignore', divide='ignore'):
                prec = np.where(judged > 0, tp / np.maximum(judged, 1), 0.0)
            ok = np.flatnonzero((judged > 0) & (prec >= target_precision))
            if ok.size:
                k = int(ok.min())
                row['thr_for_precision'] = k / num_bins
                row['precision'] = float(prec[k])
                row['recall'] = safe_ratio(tp[k], num_gt[c])
                row['kept_ratio'] = float(kept[c, k] / total)
        out.append(row)
    return out


def format_recommendation(rows: List[dict], target_precision: float,
                          target_kept_ratio: float) -> str:
    """The recommended thresholds as a titled, aligned text table."""
    title = ('Pseudo-label score threshold per class: the lowest reaching '
             f'precision >= {target_precision:g} (needs gt_ann_file), the '
             f'highest keeping >= {target_kept_ratio:g} of the raw teacher '
             'boxes')
    return title + '\n' + format_table(rows, THRESHOLD_COLUMNS, digits=2)


def read_records(path: str, skipped: Optional[Dict[str, int]] = None
                 ) -> List[dict]:
    """Read a pseudo_label_stats.jsonl file.

    A record with a count that is not a finite number >= 0 (NaN, negative,
    text) is left out and counted in ``skipped`` under ``path``: summing it
    would make every ratio of its window wrong.

    Args:
        path: The file.
        skipped: Counter of left-out records per file (optional).

    Raises:
        MMExtError: the file is missing, a line is not JSON, a record lacks
            ``iter``/``counts``/``kept_ratio``, records name different
            classes (two runs in one file), or no usable record is left.
    """
    records, bad = [], 0
    for no, rec in read_jsonl(path, with_lines=True):
        missing = [k for k in ('iter', 'counts', 'kept_ratio', 'hist',
                               'classes') if k not in rec]
        if missing:
            raise MMExtError(f'{path}:{no}: not a pseudo-label record '
                             f'(missing {", ".join(missing)})')
        if records and list(rec['classes']) != list(records[0]['classes']):
            raise MMExtError(
                f'{path}:{no}: classes {rec["classes"]} differ from the first '
                f'record\'s {records[0]["classes"]} (records of two runs?)')
        if not _counts_valid(rec):
            bad += 1
            continue
        records.append(rec)
    if bad and skipped is not None:
        skipped[path] = skipped.get(path, 0) + bad
    if not records:
        raise MMExtError(f'{path}: no records (did training reach the '
                         "hook's first interval?)" if not bad else
                         f'{path}: all {bad} records have counts that are '
                         'not numbers >= 0')
    return records


def _nonnegative_numbers(node) -> bool:
    """Every leaf of a nested dict/list is a finite number >= 0."""
    if isinstance(node, dict):
        return all(_nonnegative_numbers(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return all(_nonnegative_numbers(v) for v in node)
    return (isinstance(node, (int, float)) and not isinstance(node, bool)
            and math.isfinite(node) and node >= 0)


def _counts_valid(rec: dict) -> bool:
    """The summed fields of a record hold only counts (finite, >= 0), and
    every class has its count at every stage."""
    names = list(rec['classes'])
    counts = rec['counts']
    if not isinstance(counts, dict) or not all(
            isinstance(t, dict) and all(n in t for n in names)
            for t in counts.values()):
        return False
    return all(_nonnegative_numbers(rec[k]) for k in
               ('counts', 'tp', 'fp', 'num_gt', 'hist', 'raw_tp_hist',
                'raw_fp_hist') if k in rec)


def window_arrays(records: Sequence[dict]) -> Dict[str, np.ndarray]:
    """Sum the raw histograms (and GT matches) of some records.

    Returns:
        ``hist`` (C, B) raw teacher scores, and with ground truth also
        ``tp_hist``, ``fp_hist`` (C, B) and ``num_gt`` (C,).
    """
    names = records[-1]['classes']
    hist = sum(np.array([r['hist']['raw'][n] for n in names], np.float64)
               for r in records)
    out = {'hist': hist}
    with_gt = [r for r in records if 'raw_tp_hist' in r]
    if with_gt:
        for key in ('raw_tp_hist', 'raw_fp_hist'):
            out[key[4:]] = sum(np.array([r[key][n] for n in names], np.float64)
                               for r in with_gt)
        out['num_gt'] = sum(np.array([r['num_gt'][n] for n in names],
                                     np.float64) for r in with_gt)
    return out


def _class_total(records: Sequence[dict], key: str, stage: Optional[str],
                 name: str) -> float:
    """Sum of ``record[key][stage][name]`` (``name='all'``: every class)
    over the records that have ``key`` (and ``stage``)."""
    total = 0.0
    for rec in records:
        table = rec.get(key)
        if table is None:
            continue
        if stage is not None:
            if stage not in table:
                continue
            table = table[stage]
        total += sum(table.values()) if name == 'all' else table.get(name, 0)
    return total


def window_totals(records: Sequence[dict]) -> dict:
    """Counts, TP, FP and GT summed over some records, per stage and class.

    Ratios of a window are ratios of these sums (never means of ratios).
    Class ``'all'`` is the sum over classes.

    Args:
        records: Records of :func:`read_records` (e.g. the last few).

    Returns:
        ``classes``, ``stages``, ``num_images``, ``iters`` (first, last),
        ``thresholds`` (of the last record), ``counts``/``tp``/``fp``
        ``{stage: {class: total}}`` (``tp``/``fp`` None when no record has
        ground truth), ``num_gt`` ``{class: total}`` or None, and
        ``gt_records`` (how many records have ground truth).
    """
    last = records[-1]
    names = list(last['classes']) + ['all']
    stages = list(last['stages'])
    gt_records = sum('tp' in r for r in records)

    def table(key: str) -> Dict[str, Dict[str, float]]:
        return {st: {n: _class_total(records, key, st, n) for n in names}
                for st in stages}
    return dict(
        classes=list(last['classes']), stages=stages,
        num_images=sum(r.get('num_images', 0) for r in records),
        iters=(records[0].get('first_iter'), last['iter']),
        thresholds=last.get('thresholds', {}),
        counts=table('counts'),
        tp=table('tp') if gt_records else None,
        fp=table('fp') if gt_records else None,
        num_gt={n: _class_total(records, 'num_gt', None, n) for n in names}
        if gt_records else None,
        gt_records=gt_records)


def kept_ratio(totals: dict, stage: str, name: str) -> Optional[float]:
    """Boxes kept at ``stage`` over the teacher's raw boxes (None: no raw)."""
    counts = totals['counts']
    return safe_ratio(counts[stage].get(name, 0), counts['raw'].get(name, 0))


def precision(totals: dict, stage: str, name: str) -> Optional[float]:
    """TP / (TP + FP) at ``stage`` (None: no ground truth or no box)."""
    if totals['tp'] is None:
        return None
    tp = totals['tp'][stage].get(name, 0)
    fp = totals['fp'][stage].get(name, 0)
    return safe_ratio(tp, tp + fp)


def recall(totals: dict, stage: str, name: str) -> Optional[float]:
    """TP at ``stage`` over the hidden GT boxes (None: no ground truth)."""
    if totals['tp'] is None:
        return None
    return safe_ratio(totals['tp'][stage].get(name, 0),
                      totals['num_gt'].get(name, 0))


def format_threshold(value) -> str:
    """A threshold for a title: ``0.5``, or ``0.18-0.5`` for a per-class list."""
    if isinstance(value, (list, tuple)) and value:
        lo, hi = min(value), max(value)
        return f'{lo:.2g}' if lo == hi else f'{lo:.2g}-{hi:.2g} per class'
    return 'none' if value is None else f'{value:g}'
