"""Teacher competence per class: precision and recall at every score threshold.

One record per validation (``teacher_competence.jsonl``, written by
:class:`~mmext.hooks.TeacherCompetenceHook`, or computed after the fact from
``tools/test.py --out`` predictions by
:func:`mmext.evaluation.teacher_competence.competence_from_predictions`)::

    {"iter": 800, "model": "teacher", "iou_thr": 0.5, "num_images": 60,
     "classes": [...], "thresholds": [0.0, 0.01, ..., 1.0],
     "num_gt": {class: n}, "tp": {class: [...]}, "fp": {class: [...]}}

``tp[c][k]``/``fp[c][k]``: detections of class c with ``score >= thresholds[k]``
matched / not matched to a GT box of class c at IoU ``iou_thr`` (COCO
matching, greedy in score order). A Soft Teacher keeps a pseudo label when
``score > thr``; on continuous scores the two differ on a set of measure 0.

The question a pseudo-label threshold asks is whether the boxes it lets in
are objects or noise. :func:`calibrated_threshold` answers it with a lower
confidence bound on the precision (Wilson score interval, one-sided), so a
class with three lucky detections is not lowered.
"""
from statistics import NormalDist
from typing import Dict, List, Optional, Sequence

import numpy as np

#: Precision a kept pseudo label must reach, as a lower confidence bound.
DEFAULT_PRECISION_TARGET = 0.5
#: One-sided confidence of that bound.
DEFAULT_CONFIDENCE = 0.9
#: Thresholds a competence table shows, besides the calibrated one.
DISPLAY_THRESHOLDS = (0.1, 0.2, 0.3, 0.5)


def wilson_lower_bound(successes, trials, confidence: float = DEFAULT_CONFIDENCE
                       ) -> np.ndarray:
    """One-sided Wilson score lower bound of a binomial proportion.

    ``(p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with
    ``p = successes / n`` and ``z`` the ``confidence`` quantile of N(0, 1).

    Args:
        successes: Counts (array-like).
        trials: Counts, >= successes (array-like); 0 gives a bound of 0.
        confidence: In (0, 1), e.g. 0.9.

    Returns:
        Lower bounds in [0, 1], the shape of the broadcast inputs.
    """
    k = np.asarray(successes, np.float64)
    n = np.asarray(trials, np.float64)
    z = NormalDist().inv_cdf(confidence)
    with np.errstate(divide='ignore', invalid='ignore'):
        p = np.where(n > 0, k / np.maximum(n, 1), 0.0)
        nn = np.maximum(n, 1)
        centre = p + z * z / (2 * nn)
        spread = z * np.sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn))
        lower = (centre - spread) / (1 + z * z / nn)
    return np.where(n > 0, np.clip(lower, 0.0, 1.0), 0.0)


def calibrated_threshold(thresholds: Sequence[float], tp: Sequence[float],
                         fp: Sequence[float],
                         precision_target: float = DEFAULT_PRECISION_TARGET,
                         confidence: float = DEFAULT_CONFIDENCE
                         ) -> Optional[float]:
    """The lowest threshold whose precision lower bound reaches the target.

    Args:
        thresholds: (K,) ascending score thresholds.
        tp: (K,) true positives kept at each threshold.
        fp: (K,) false positives kept at each threshold.
        precision_target: In [0, 1].
        confidence: One-sided confidence of the Wilson bound.

    Returns:
        The threshold, or None when no threshold reaches the target (the
        teacher cannot yet detect the class at that precision).
    """
    tp, fp = np.asarray(tp, np.float64), np.asarray(fp, np.float64)
    lower = wilson_lower_bound(tp, tp + fp, confidence)
    ok = np.flatnonzero(lower >= precision_target)
    return float(np.asarray(thresholds)[ok[0]]) if ok.size else None


def competence_record(class_names: Sequence[str], thresholds: Sequence[float],
                      tp: Dict[str, Sequence[int]],
                      fp: Dict[str, Sequence[int]],
                      num_gt: Dict[str, int], iteration: Optional[int],
                      model: str, iou_thr: float, num_images: int) -> dict:
    """The JSON record of one validation (see the module docstring)."""
    return {
        'iter': None if iteration is None else int(iteration),
        'model': model, 'iou_thr': float(iou_thr),
        'num_images': int(num_images), 'classes': list(class_names),
        'thresholds': [round(float(t), 6) for t in thresholds],
        'num_gt': {n: int(num_gt[n]) for n in class_names},
        'tp': {n: [int(v) for v in tp[n]] for n in class_names},
        'fp': {n: [int(v) for v in fp[n]] for n in class_names},
    }


def _at(thresholds: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(thresholds - value)))


def class_competence(record: dict,
                     precision_target: float = DEFAULT_PRECISION_TARGET,
                     confidence: float = DEFAULT_CONFIDENCE) -> List[dict]:
    """Per class: can the teacher detect it, and from which threshold?

    Returns:
        One dict per class: ``class``, ``num_gt``, ``competent`` (some
        threshold reaches the target), ``thr_at_target`` (the calibrated
        threshold or None), ``precision_at_target``, ``recall_at_target``,
        ``best_precision`` (highest precision over thresholds keeping at
        least one box), ``best_precision_boxes`` (boxes kept there),
        ``best_lower_bound`` (highest Wilson bound), and ``at`` (precision,
        recall, kept boxes at :data:`DISPLAY_THRESHOLDS`).
    """
    thr = np.asarray(record['thresholds'], np.float64)
    rows = []
    for name in record['classes']:
        tp = np.asarray(record['tp'][name], np.float64)
        fp = np.asarray(record['fp'][name], np.float64)
        n_gt = int(record['num_gt'][name])
        kept = tp + fp
        with np.errstate(divide='ignore', invalid='ignore'):
            prec = np.where(kept > 0, tp / np.maximum(kept, 1), np.nan)
        lower = wilson_lower_bound(tp, kept, confidence)
        t = calibrated_threshold(thr, tp, fp, precision_target, confidence)
        k = _at(thr, t) if t is not None else None
        best = int(np.nanargmax(prec)) if np.any(kept > 0) else None
        rows.append({
            'class': name, 'num_gt': n_gt, 'competent': t is not None,
            'thr_at_target': t,
            'precision_at_target': None if k is None else float(prec[k]),
            'recall_at_target': (None if k is None or not n_gt
                                 else float(tp[k] / n_gt)),
            'best_precision': None if best is None else float(prec[best]),
            'best_precision_boxes': None if best is None else int(kept[best]),
            'best_lower_bound': float(lower.max()) if lower.size else 0.0,
            'at': {f'{v:g}': _point(prec, tp, kept, n_gt, _at(thr, v))
                   for v in DISPLAY_THRESHOLDS},
        })
    return rows


def _point(prec: np.ndarray, tp: np.ndarray, kept: np.ndarray, n_gt: int,
           k: int) -> dict:
    return {'precision': None if kept[k] == 0 else float(prec[k]),
            'recall': float(tp[k] / n_gt) if n_gt else None,
            'kept': int(kept[k])}
