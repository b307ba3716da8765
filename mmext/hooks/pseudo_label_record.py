"""Pseudo-label records: tally -> JSON record, score quantiles, thresholds.

The record is one line of ``<work_dir>/pseudo_label_stats.jsonl`` (its schema
is documented in :mod:`mmext.hooks.pseudo_label_stats`). The functions here
are shared by the hook (log line, end-of-training recommendation) and by
``tools/plot_pseudo_stats.py`` (which reads the file back).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.tables import format_table
from ..utils import MMExtError, read_jsonl
from .pseudo_label_tally import PseudoLabelTally

#: Columns of the recommendation table (rows of recommend_thresholds).
THRESHOLD_COLUMNS = ('class', 'raw_boxes', 'thr_for_precision', 'precision',
                     'recall', 'kept_ratio', 'thr_for_kept_ratio',
                     'kept_ratio_at_thr')

#: Quantiles reported for the scores of each stage and class.
QUANTILES = (('q10', 0.10), ('q25', 0.25), ('median', 0.50), ('q75', 0.75),
             ('q90', 0.90))


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den > 0 else None


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
                row['recall'] = _ratio(tp[k], num_gt[c])
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


def read_records(path: str) -> List[dict]:
    """Read a pseudo_label_stats.jsonl file.

    Raises:
        MMExtError: the file is missing, a line is not JSON, or a record
            lacks ``iter``/``counts``/``kept_ratio``.
    """
    records = []
    for no, rec in read_jsonl(path, with_lines=True):
        missing = [k for k in ('iter', 'counts', 'kept_ratio', 'hist',
                               'classes') if k not in rec]
        if missing:
            raise MMExtError(f'{path}:{no}: not a pseudo-label record '
                             f'(missing {", ".join(missing)})')
        records.append(rec)
    if not records:
        raise MMExtError(f'{path}: no records (did training reach the '
                         "hook's first interval?)")
    return records


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
