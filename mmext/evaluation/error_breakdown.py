"""Per-class error breakdown as TIDE computes it, on box-only COCO data.

TIDE (Bolya et al., ECCV 2020; the ``tidecv`` package) sorts every false
positive by its best IoU with the ground truth (foreground IoU ``t_f`` =
0.5, background ``t_b`` = 0.1), in TIDE's order:

    localization   same class, t_b <= IoU < t_f
    classification other class, IoU >= t_f
    duplicate      same class, IoU >= t_f (that GT already matched)
    background     every IoU < t_b
    both           otherwise (other class, t_b <= IoU < t_f)

and a GT box that no detection matched or aimed at (as a classification or
localization error) is ``missed``. The weight of each type is the AP50 it
would add if only that type were fixed. Fixes as TIDE (``tidecv``'s
``ClassError.fix``, ``BoxError.fix``, ``BestGTMatch``): a classification or
localization error aimed at an unmatched GT becomes a true positive for it
if it is the highest-scoring such error on that GT; every other one (a
second error on that GT, or one whose GT a true positive already found) is
suppressed; duplicate, background and both errors are suppressed; a missed
GT is removed from the GT count.

Two ways to weigh a fix (``dap_mode``):

- ``'tide'`` (default): TIDE's own numbers. The fixed detections keep their
  scores and TP/FP flags without re-matching, AP is the 101-point COCO
  interpolation per class, mAP averages every class with GT *or*
  detections (a class with only false positives counts with AP 0, as in
  TIDE), and a negative mAP gain is reported as 0.
- ``'coco'``: the fixed detections are re-evaluated by
  COCOeval (classification errors relabelled, localization errors moved
  onto the GT box), so AP50 plus dAP is what mmdet's CocoMetric would
  report after the fix; mAP averages the classes with GT only.

Matching is COCOeval's (100 detections per image and class), read through
:mod:`.coco_match`; TIDE keeps 100 per image over all classes, which is the
same on images with at most 100 detections. TIDE's own loader needs
segmentation fields, this does not.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from mmext.data import BoxTable
from mmext.evaluation.coco_match import (COCO_MAX_DETS, MatchTable, ap_per_class,
                         evaluate_boxes, mean_ap)
from mmext.evaluation.predictions import Detections

ERROR_TYPES = ('classification', 'localization', 'both', 'duplicate',
               'background', 'missed')
DAP_MODES = ('tide', 'coco')
FG_IOU = 0.5
BG_IOU = 0.1
#: TIDE's recall grid: ``x / 100`` (not ``np.linspace``, whose 0.07 is
#: 0.07000000000000001 and can pick a different precision at recall 0.07).
_RECALL_GRID = np.array([x / 100 for x in range(101)])


@dataclass
class ErrorBreakdown:
    """Errors per class and the AP50 each type would add if fixed.

    Attributes:
        class_names: Class names.
        ap50: COCO AP50 per class as evaluated (NaN without GT).
        map50: COCO mAP50.
        counts: ``{type: (K,) int array}`` errors per class: the class
            whose AP the fix changes (the GT's class for classification and
            missed errors, the detection's class for the others).
        dap: ``{type: (K,) array}`` AP50 gained per class when that type is
            fixed; ``dmap``: ``{type: float}`` the mAP50 gained.
        det_error: Error type of every detection row (``''`` for a TP or an
            unevaluated detection), for inspection.
        det_target: The GT row each error aims at (-1: none, a background
            error), for drawing it beside the detection.
        gt_missed: Boolean per GT row: a missed box.
        det_matched_gt: The GT row each true positive matched (-1: not a
            true positive).
        dap_mode: ``'tide'`` or ``'coco'`` (see the module docstring).
        ref_map50: The mAP50 the gains are measured from: TIDE's mAP50 in
            ``'tide'`` mode (every class with GT or detections), ``map50``
            in ``'coco'`` mode.
    """
    class_names: tuple
    ap50: np.ndarray
    map50: float
    counts: Dict[str, np.ndarray]
    dap: Dict[str, np.ndarray]
    dmap: Dict[str, float]
    det_error: np.ndarray
    dap_mode: str = 'tide'
    ref_map50: float = float('nan')
    det_target: np.ndarray = None
    gt_missed: np.ndarray = None
    det_matched_gt: np.ndarray = None

    def rows(self) -> List[dict]:
        """One dict per class plus 'all': AP50, counts, dAP per type."""
        out = []
        for k, name in enumerate(self.class_names):
            row = {'class': name, 'ap50': float(self.ap50[k])}
            for t in ERROR_TYPES:
                row[f'n_{t}'] = int(self.counts[t][k])
                row[f'dap_{t}'] = float(self.dap[t][k])
            out.append(row)
        total = {'class': 'all', 'ap50': self.map50}
        for t in ERROR_TYPES:
            total[f'n_{t}'] = int(self.counts[t].sum())
            total[f'dap_{t}'] = self.dmap[t]
        out.append(total)
        return out


def _xywh(x1, y1, x2, y2) -> np.ndarray:
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).reshape(-1, 4)


def _classify(m: MatchTable, gt: BoxTable, dets: Detections):
    """Error type and target GT row of every evaluated false positive."""
    error = np.full(len(dets), '', dtype=object)
    target = np.full(len(dets), -1, dtype=np.int64)
    fp_rows = m.det_id[~m.det_tp & ~m.det_ignored] - 1
    keep_gt = np.flatnonzero(~gt.ignore)
    gt_box = _xywh(gt.x1, gt.y1, gt.x2, gt.y2)
    for iid in np.unique(dets.image_id[fp_rows]):
        rows = fp_rows[dets.image_id[fp_rows] == iid]
        g = keep_gt[gt.image_id[keep_gt] == iid]
        if not len(g):
            error[rows] = 'background'
            continue
        d_box = _xywh(dets.x1[rows], dets.y1[rows], dets.x2[rows],
                      dets.y2[rows])
        iou = np.asarray(mask_utils.iou(d_box, gt_box[g], [0] * len(g)))
        same = dets.label[rows][:, None] == gt.label[g][None, :]
        iou_same = np.where(same, iou, -1.0)
        iou_other = np.where(same, -1.0, iou)
        for n, r in enumerate(rows):
            js, jo = int(iou_same[n].argmax()), int(iou_other[n].argmax())
            s, o = iou_same[n, js], iou_other[n, jo]
            if BG_IOU <= s < FG_IOU:
                error[r], target[r] = 'localization', g[js]
            elif o >= FG_IOU:
                error[r], target[r] = 'classification', g[jo]
            elif s >= FG_IOU:
                error[r], target[r] = 'duplicate', g[js]
            elif max(s, o) < BG_IOU:
                error[r] = 'background'
            else:
                error[r], target[r] = 'both', g[jo]
    return error, target


def _missed_gt(m: MatchTable, gt: BoxTable, error: np.ndarray,
               target: np.ndarray) -> np.ndarray:
    """Boolean per GT row: not ignored, not matched, not aimed at."""
    used = np.zeros(len(gt), dtype=bool)
    used[m.det_gt[m.det_tp] - 1] = True
    aimed = target[np.isin(error, ('classification', 'localization'))]
    used[aimed] = True
    return ~gt.ignore & ~used


def _best_on_gt(dets: Detections, error: np.ndarray, target: np.ndarray,
                matched: np.ndarray) -> np.ndarray:
    """Boolean per detection: the error TIDE's ``BestGTMatch`` would fix.

    Among the classification and localization errors aimed at one GT that
    no true positive found, TIDE fixes the highest-scoring one (the first
    in score order on a tie) and suppresses the others, whichever of the
    two types is being fixed: one GT can absorb one detection only.
    """
    rows = np.flatnonzero(np.isin(error, ('classification', 'localization')))
    rows = rows[~matched[target[rows]]]
    rows = rows[np.argsort(-dets.score[rows], kind='stable')]
    _, first = np.unique(target[rows], return_index=True)
    best = np.zeros(len(dets), dtype=bool)
    best[rows[first]] = True
    return best


def _tide_fix(kind: str, error: np.ndarray, best: np.ndarray
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Rows TIDE turns into true positives and rows it suppresses."""
    rows = error == kind
    if kind in ('classification', 'localization'):
        return rows & best, rows & ~best
    return np.zeros_like(rows), rows  # duplicate, background, both; missed


def _fixed_detections(dets: Detections, gt: BoxTable, target: np.ndarray,
                      kind: str, promote: np.ndarray,
                      drop: np.ndarray) -> Detections:
    """Detections with one error type fixed, for COCOeval to re-match."""
    fixed = dets.select(np.ones(len(dets), dtype=bool))  # a copy
    rows = np.flatnonzero(promote)
    g = target[rows]
    if kind == 'classification':
        fixed.label[rows] = gt.label[g]
    else:
        for name in ('x1', 'y1', 'x2', 'y2'):
            getattr(fixed, name)[rows] = getattr(gt, name)[g]
    return fixed.select(~drop)


def tide_ap(score: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """AP of one class as ``tidecv``'s ``APDataObject.get_ap`` (as a fraction).

    Detections in descending score order give precision/recall points;
    precision is made non-increasing from the right, read at the first
    point with recall >= r for r = 0, 0.01, ..., 1 (0 past the last) and
    averaged: COCO's 101-point interpolation.

    Args:
        score: Scores of the class's evaluated detections.
        tp: True-positive flag of each.
        num_gt: Non-ignored GT boxes of the class; 0 gives AP 0.
    """
    if num_gt == 0:
        return 0.0
    tp = np.asarray(tp, dtype=bool)[np.argsort(-score, kind='stable')]
    n_true = np.cumsum(tp)
    precision = n_true / np.arange(1, len(tp) + 1)
    recall = n_true / num_gt
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, _RECALL_GRID, side='left')
    ok = idx < len(precision)
    bars = np.zeros(len(_RECALL_GRID))
    bars[ok] = precision[idx[ok]]
    # TIDE sums a Python list left to right; do the same, bit for bit
    return sum(bars.tolist()) / len(bars)


def _tide_aps(label: np.ndarray, score: np.ndarray, tp: np.ndarray,
              num_gt: np.ndarray) -> Tuple[np.ndarray, float]:
    """TIDE AP per class (0 without GT) and its mAP over non-empty classes.

    A class is in TIDE's mean when it has GT or detections, so a class
    with false positives only pulls the mean down with AP 0.
    """
    k = len(num_gt)
    ap = np.array([tide_ap(score[label == c], tp[label == c], int(num_gt[c]))
                   for c in range(k)])
    present = (num_gt > 0) | (np.bincount(label, minlength=k) > 0)
    aps = ap[present].tolist()
    return ap, (sum(aps) / len(aps) if aps else 0.0)


def _dap_tide(m: MatchTable, gt: BoxTable, dets: Detections, error, target,
              missed, best) -> Tuple[Dict, Dict, float]:
    """dAP per class and mAP gain of each type, TIDE's way (no re-match)."""
    k = len(gt.class_names)
    ev_rows = m.det_id[~m.det_ignored] - 1  # TIDE's AP data points
    num_gt = np.bincount(gt.label[~gt.ignore], minlength=k)
    tp = np.zeros(len(dets), dtype=bool)
    tp[m.det_id[m.det_tp] - 1] = True
    ap0, map0 = _tide_aps(dets.label[ev_rows], dets.score[ev_rows],
                          tp[ev_rows], num_gt)
    dap, dmap = {}, {}
    for kind in ERROR_TYPES:
        label, n_gt, fixed_tp = dets.label.copy(), num_gt, tp.copy()
        promote, drop = _tide_fix(kind, error, best)
        if kind == 'missed':
            n_gt = num_gt - np.bincount(gt.label[missed], minlength=k)
        fixed_tp[promote] = True
        label[promote] = gt.label[target[promote]]
        rows = ev_rows[~drop[ev_rows]]
        ap, map_fix = _tide_aps(label[rows], dets.score[rows],
                                fixed_tp[rows], n_gt)
        dap[kind] = ap - ap0
        # TIDE: a negative gain is binning noise, reported as 0
        dmap[kind] = max(map_fix - map0, 0.0)
    return dap, dmap, map0


def _ap50(gt: BoxTable, dets: Detections, backend: str):
    """COCO evaluation at IoU 0.5: its matches, AP50 per class, mAP50."""
    ev, m = evaluate_boxes(gt, dets, FG_IOU, max_dets=COCO_MAX_DETS,
                           iou_thrs=[FG_IOU], backend=backend)
    return m, ap_per_class(ev), mean_ap(ev)


def _gain(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """AP gained per class; 0 where the class has no GT either way."""
    return np.nan_to_num(after, nan=0.0) - np.nan_to_num(before, nan=0.0)


def _dap_coco(gt: BoxTable, dets: Detections, error, target, missed, best,
              ap50, map50, backend: str) -> Tuple[Dict, Dict]:
    """dAP per class and mAP gain of each type by re-running COCOeval."""
    dap, dmap = {}, {}
    for kind in ERROR_TYPES:
        if kind == 'missed':
            _, ap_fix, map_fix = _ap50(gt.select(~missed), dets, backend)
        else:
            promote, drop = _tide_fix(kind, error, best)
            _, ap_fix, map_fix = _ap50(gt, _fixed_detections(
                dets, gt, target, kind, promote, drop), backend)
        dap[kind] = _gain(ap_fix, ap50)
        dmap[kind] = float(np.nan_to_num(map_fix) - np.nan_to_num(map50))
    return dap, dmap


def _counts(gt: BoxTable, dets: Detections, error, target,
            missed) -> Dict[str, np.ndarray]:
    """Errors per type and class (the class whose AP the fix changes)."""
    k = len(gt.class_names)
    counts = {'missed': np.bincount(gt.label[missed], minlength=k)}
    for kind in ERROR_TYPES[:-1]:
        rows = np.flatnonzero(error == kind)
        labels = (gt.label[target[rows]] if kind == 'classification'
                  else dets.label[rows])
        counts[kind] = np.bincount(labels, minlength=k)
    return counts


def error_breakdown(gt: BoxTable, dets: Detections,
                    dap_mode: str = 'tide',
                    backend: str = 'auto') -> ErrorBreakdown:
    """Classify every error and weigh each type by the AP50 it costs.

    Args:
        gt: Ground truth (ignored boxes: crowd, neither needed nor FP).
        dets: Detections aligned with ``gt``.
        dap_mode: ``'tide'`` (default: TIDE's own dAP) or ``'coco'``
            (each fix re-evaluated by pycocotools' COCOeval); see the
            module docstring.
        backend: COCO evaluation backend, see
            :func:`~.coco_match.evaluate_boxes` (same matches either way).

    Returns:
        An :class:`ErrorBreakdown`; ``ap50``/``map50`` are COCOeval's in
        both modes.

    Raises:
        ValueError: ``dap_mode`` is not one of :data:`DAP_MODES`.
    """
    if dap_mode not in DAP_MODES:
        raise ValueError(f'dap_mode {dap_mode!r} is not one of {DAP_MODES}')
    m, ap50, map50 = _ap50(gt, dets, backend)
    error, target = _classify(m, gt, dets)
    missed = _missed_gt(m, gt, error, target)
    matched = np.zeros(len(gt), dtype=bool)
    matched[m.det_gt[m.det_tp] - 1] = True
    best = _best_on_gt(dets, error, target, matched)
    if dap_mode == 'tide':
        dap, dmap, ref = _dap_tide(m, gt, dets, error, target, missed, best)
    else:
        dap, dmap = _dap_coco(gt, dets, error, target, missed, best, ap50,
                              map50, backend)
        ref = map50
    return ErrorBreakdown(tuple(gt.class_names), ap50, map50,
                          _counts(gt, dets, error, target, missed), dap,
                          dmap, error, dap_mode, ref, target, missed,
                          _matched_gt(m, len(dets)))


def _matched_gt(m: MatchTable, num_dets: int) -> np.ndarray:
    """GT row per detection row for the true positives, else -1."""
    out = np.full(num_dets, -1, dtype=np.int64)
    out[m.det_id[m.det_tp] - 1] = m.det_gt[m.det_tp] - 1
    return out
