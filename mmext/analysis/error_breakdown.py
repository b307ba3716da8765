"""Per-class error breakdown in the spirit of TIDE, on box-only COCO data.

TIDE (Bolya et al., ECCV 2020) sorts every false positive by its best IoU
with the ground truth (foreground IoU ``t_f`` = 0.5, background ``t_b`` =
0.1), in TIDE's order:

    localization   same class, t_b <= IoU < t_f
    classification other class, IoU >= t_f
    duplicate      same class, IoU >= t_f (that GT already matched)
    background     every IoU < t_b
    both           otherwise (other class, t_b <= IoU < t_f)

and a GT box that no detection matched or aimed at (as a classification or
localization error) is ``missed``. The weight of each type is the AP50 it
would add if fixed: fix only that type, re-run pycocotools' COCOeval, and
take the difference. Fixes as TIDE: classification -> give the detection the
GT's class, localization -> give it the GT's box (both: suppress it when
that GT is already matched), duplicate / background / both -> suppress the
detection, missed -> drop the GT box. Matching is COCOeval's (100
detections per image and class), read through :mod:`.coco_match`; TIDE's
own loader needs segmentation fields, this does not.
"""
from dataclasses import dataclass
from typing import Dict, List

import numpy as np
from pycocotools import mask as mask_utils

from ..data import BoxTable
from .coco_match import (COCO_MAX_DETS, MatchTable, ap_per_class,
                         coco_from_detections, coco_from_table, match_table,
                         mean_ap, run_cocoeval)
from .predictions import Detections

ERROR_TYPES = ('classification', 'localization', 'both', 'duplicate',
               'background', 'missed')
FG_IOU = 0.5
BG_IOU = 0.1


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
    """
    class_names: tuple
    ap50: np.ndarray
    map50: float
    counts: Dict[str, np.ndarray]
    dap: Dict[str, np.ndarray]
    dmap: Dict[str, float]
    det_error: np.ndarray

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


def _fixed_detections(dets: Detections, error: np.ndarray,
                      target: np.ndarray, kind: str, gt: BoxTable,
                      matched: np.ndarray) -> Detections:
    """Detections with every error of ``kind`` fixed the TIDE way."""
    rows = np.flatnonzero(error == kind)
    keep = np.ones(len(dets), dtype=bool)
    fixed = dets.select(keep)  # a copy
    if kind in ('classification', 'localization'):
        g = target[rows]
        drop = matched[g]  # the GT is already found: suppress instead
        keep[rows[drop]] = False
        rows, g = rows[~drop], g[~drop]
        if kind == 'classification':
            fixed.label[rows] = gt.label[g]
        else:
            for name in ('x1', 'y1', 'x2', 'y2'):
                getattr(fixed, name)[rows] = getattr(gt, name)[g]
    else:
        keep[rows] = False
    return fixed.select(keep)


def _ap50(gt: BoxTable, dets: Detections):
    gt_coco = coco_from_table(gt)
    ev = run_cocoeval(gt_coco, coco_from_detections(gt_coco, dets),
                      max_dets=COCO_MAX_DETS, iou_thrs=[FG_IOU])
    return ev, ap_per_class(ev), mean_ap(ev)


def _gain(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """AP gained per class; 0 where the class has no GT either way."""
    return np.nan_to_num(after, nan=0.0) - np.nan_to_num(before, nan=0.0)


def error_breakdown(gt: BoxTable, dets: Detections) -> ErrorBreakdown:
    """Classify every error and weigh each type by the AP50 it costs.

    Args:
        gt: Ground truth (ignored boxes: crowd, neither needed nor FP).
        dets: Detections aligned with ``gt``.

    Returns:
        An :class:`ErrorBreakdown`; AP50 values are pycocotools' COCOeval.
    """
    ev, ap50, map50 = _ap50(gt, dets)
    m = match_table(ev, gt, dets, FG_IOU)
    error, target = _classify(m, gt, dets)
    missed = _missed_gt(m, gt, error, target)
    matched = np.zeros(len(gt), dtype=bool)
    matched[m.det_gt[m.det_tp] - 1] = True
    k = len(gt.class_names)
    counts, dap, dmap = {}, {}, {}
    for kind in ERROR_TYPES:
        if kind == 'missed':
            counts[kind] = np.bincount(gt.label[missed], minlength=k)
            _, ap_fix, map_fix = _ap50(gt.select(~missed), dets)
        else:
            rows = np.flatnonzero(error == kind)
            labels = (gt.label[target[rows]] if kind == 'classification'
                      else dets.label[rows])
            counts[kind] = np.bincount(labels, minlength=k)
            _, ap_fix, map_fix = _ap50(
                gt, _fixed_detections(dets, error, target, kind, gt, matched))
        dap[kind] = _gain(ap_fix, ap50)
        dmap[kind] = float(np.nan_to_num(map_fix) - np.nan_to_num(map50))
    return ErrorBreakdown(tuple(gt.class_names), ap50, map50, counts, dap,
                          dmap, error)
