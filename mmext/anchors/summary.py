"""Per-class summaries of exact anchor coverage, and the search objective."""
from typing import List, Sequence

import numpy as np

from .anchor_spec import AnchorSpec
from .coverage import Coverage

#: Objectives of the ratio search (how per-class coverage is aggregated).
OBJECTIVES = ('box', 'class', 'worst')
#: Weight of mean max IoU in the coverage score (breaks ties of the share).
IOU_TIE_WEIGHT = 0.01


def coverage_summary(cov: Coverage, labels: np.ndarray,
                     class_names: Sequence[str], spec: AnchorSpec) -> List[dict]:
    """Coverage per class, plus a last row ``'all'``.

    Returns:
        Dicts with ``name``, ``count``, ``share_pos`` (max IoU >=
        pos_iou_thr), ``share_min_pos`` (max IoU >= min_pos_iou),
        ``share_low_quality_only`` (between the two: positive only through
        the low-quality match), ``share_none`` (no positive anchor at all
        after MaxIoUAssigner), ``mean_max_iou``, ``mean_pos_per_gt``
        (anchors with IoU >= pos_iou_thr) and ``mean_assigned_per_gt``
        (anchors MaxIoUAssigner assigns to the GT).
    """
    rows = []
    groups = [(name, labels == k) for k, name in enumerate(class_names)]
    groups.append(('all', np.ones(len(labels), dtype=bool)))
    for name, mask in groups:
        n = int(mask.sum())
        m = cov.max_iou[mask]
        nan = float('nan')
        ge_pos = m >= spec.pos_iou_thr
        ge_min = m >= spec.min_pos_iou
        row = dict(
            name=name,
            count=n,
            share_pos=float(ge_pos.mean()) if n else nan,
            share_min_pos=float(ge_min.mean()) if n else nan,
            share_low_quality_only=(float((ge_min & ~ge_pos).mean())
                                    if n and spec.match_low_quality else (0.0 if n else nan)),
            mean_max_iou=float(m.mean()) if n else nan,
            mean_pos_per_gt=float(cov.n_pos_iou[mask].mean()) if n else nan)
        if cov.n_assigned is not None:
            a = cov.n_assigned[mask]
            row['mean_assigned_per_gt'] = float(a.mean()) if n else nan
            row['share_none'] = float((a == 0).mean()) if n else nan
        rows.append(row)
    return rows


def class_scores(max_iou: np.ndarray, labels: np.ndarray, num_classes: int,
                 pos_iou_thr: float) -> np.ndarray:
    """Coverage score per class for one or many candidate anchor sets.

    score = share of GTs with max IoU >= pos_iou_thr
    + IOU_TIE_WEIGHT * mean max IoU.

    Args:
        max_iou: (N,) or (N, C) max IoU per box (C candidates).
        labels: (N,) class index per box.
        num_classes: Number of classes.
        pos_iou_thr: The assigner's positive threshold.

    Returns:
        (num_classes,) or (num_classes, C); NaN for classes without boxes.
    """
    x = max_iou if max_iou.ndim == 2 else max_iou[:, None]
    per_box = (x >= pos_iou_thr) + IOU_TIE_WEIGHT * x
    onehot = np.zeros((num_classes, len(labels)))
    onehot[labels, np.arange(len(labels))] = 1.0
    counts = onehot.sum(axis=1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        scores = onehot @ per_box / counts
    return scores if max_iou.ndim == 2 else scores[:, 0]


def aggregate(scores: np.ndarray, counts: np.ndarray, objective: str) -> np.ndarray:
    """Aggregate per-class scores: box-weighted, class-balanced or worst class.

    Args:
        scores: (K,) or (K, C) per-class scores (NaN for empty classes).
        counts: (K,) boxes per class.
        objective: One of :data:`OBJECTIVES`.
    """
    present = counts > 0
    s = scores[present]
    if objective == 'box':
        w = counts[present] / counts[present].sum()
        return np.tensordot(w, s, axes=(0, 0))
    if objective == 'class':
        return s.mean(axis=0)
    if objective == 'worst':
        return s.min(axis=0)
    raise ValueError(f'objective must be one of {OBJECTIVES}, got {objective!r}')
