"""Pseudo-label records: tally -> JSON record, score quantiles.

The record is one line of ``<work_dir>/pseudo_label_stats.jsonl`` (its schema
is documented in :mod:`mmext.hooks.pseudo_label_stats`). Reading the records
back, window totals and threshold recommendations are in
:mod:`mmext.runs.pseudo_records` (no torch needed there).
"""
from typing import Dict, Optional, Sequence

import numpy as np

from ..runs.pseudo_records import safe_ratio as _ratio
from .pseudo_label_tally import PseudoLabelTally

#: Quantiles reported for the scores of each stage and class.
QUANTILES = (('q10', 0.10), ('q25', 0.25), ('median', 0.50), ('q75', 0.75),
             ('q90', 0.90))


def hist_quantile(hist: np.ndarray, q: float) -> Optional[float]:
    """Quantile ``q`` of scores given as a histogram on [0, 1].

    Linear interpolation inside the bin that holds the quantile, so the
    result is exact to one bin width (``1 / len(hist)``).

    Args:
        hist: (B,) counts of equal bins on [0, 1].
        q: Quantile in [0, 1].

    Returns:
        The score, or None for an empty histogram.
    """
    hist = np.asarray(hist, np.float64)
    total = hist.sum()
    if total <= 0:
        return None
    cum = np.cumsum(hist)
    target = q * total
    k = int(np.searchsorted(cum, target, side='left'))
    k = min(k, len(hist) - 1)
    before = cum[k - 1] if k > 0 else 0.0
    frac = (target - before) / hist[k] if hist[k] > 0 else 0.0
    return float((k + frac) / len(hist))


def score_summary(hist: np.ndarray, score_sum: float) -> dict:
    """Count, exact mean and histogram quantiles of one set of scores."""
    count = float(np.sum(hist))
    out = {'count': int(count), 'mean': _ratio(score_sum, count)}
    for name, q in QUANTILES:
        out[name] = hist_quantile(hist, q)
    return out


def _per_class(values: np.ndarray, class_names: Sequence[str],
               cast=int) -> Dict[str, object]:
    return {name: cast(v) for name, v in zip(class_names, values)}


def tally_record(tally: PseudoLabelTally, class_names: Sequence[str],
                 thresholds: Dict[str, object], iteration: int,
                 first_iter: int) -> dict:
    """The JSON record of one logging interval.

    Args:
        tally: Statistics of the interval (already summed over processes).
        class_names: Class names, in label order.
        thresholds: Thresholds in force (from ``semi_train_cfg``).
        iteration: Last iteration of the interval (1-based, as logged).
        first_iter: First iteration of the interval (1-based).
    """
    names = list(class_names)
    stages = tally.stages
    counts, hist = tally['counts'], tally['hist']
    n_img = int(tally['num_images'])
    rec = {
        'iter': int(iteration),
        'first_iter': int(first_iter),
        'num_images': n_img,
        'classes': names,
        'stages': list(stages),
        'thresholds': dict(thresholds),
        'counts': {},
        'counts_total': {},
        'kept_ratio': {},
        'kept_ratio_total': {},
        'boxes_per_image': {},
        'images_without': {},
        'score': {},
        'hist_bin_edges': [k / tally.num_bins
                           for k in range(tally.num_bins + 1)],
        'hist': {},
        'student_view': {'in': int(tally['student_in']),
                         'kept': int(tally['student_kept'])},
    }
    raw = counts[0]
    for s, stage in enumerate(stages):
        rec['counts'][stage] = _per_class(counts[s], names)
        rec['counts_total'][stage] = int(counts[s].sum())
        rec['kept_ratio'][stage] = {
            n: _ratio(counts[s, c], raw[c]) for c, n in enumerate(names)}
        rec['kept_ratio_total'][stage] = _ratio(counts[s].sum(), raw.sum())
        rec['boxes_per_image'][stage] = _ratio(counts[s].sum(), n_img)
        rec['images_without'][stage] = int(tally['images_without'][s])
        summary = {n: score_summary(hist[s, c], tally['score_sum'][s, c])
                   for c, n in enumerate(names)}
        summary['all'] = score_summary(hist[s].sum(0),
                                       tally['score_sum'][s].sum())
        rec['score'][stage] = summary
        rec['hist'][stage] = {n: hist[s, c].astype(int).tolist()
                              for c, n in enumerate(names)}
    if tally['gt_images'] > 0:
        rec.update(quality_record(tally, names))
    return rec


def quality_record(tally: PseudoLabelTally,
                   class_names: Sequence[str]) -> dict:
    """Precision/recall per stage and class (IoU >= 0.5, same class)."""
    names = list(class_names)
    tp, fp, num_gt = tally['tp'], tally['fp'], tally['num_gt']
    out = {'gt_images': int(tally['gt_images']),
           'num_gt': _per_class(num_gt, names),
           'tp': {}, 'fp': {}, 'precision': {}, 'recall': {},
           'raw_tp_hist': {n: tally['raw_tp_hist'][c].astype(int).tolist()
                           for c, n in enumerate(names)},
           'raw_fp_hist': {n: tally['raw_fp_hist'][c].astype(int).tolist()
                           for c, n in enumerate(names)}}
    for s, stage in enumerate(tally.stages):
        out['tp'][stage] = _per_class(tp[s], names)
        out['fp'][stage] = _per_class(fp[s], names)
        prec = {n: _ratio(tp[s, c], tp[s, c] + fp[s, c])
                for c, n in enumerate(names)}
        prec['all'] = _ratio(tp[s].sum(), tp[s].sum() + fp[s].sum())
        rec = {n: _ratio(tp[s, c], num_gt[c]) for c, n in enumerate(names)}
        rec['all'] = _ratio(tp[s].sum(), num_gt.sum())
        out['precision'][stage] = prec
        out['recall'][stage] = rec
    return out
