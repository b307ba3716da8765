"""The error breakdown box by box: one row per detection and missed GT box.

:func:`~.error_breakdown.error_breakdown` counts errors per class; this
lists them, so that a pandas or FiftyOne user can load, filter and look at
each one (``tools/gallery.py`` writes it as CSV and JSON beside the crops).
"""
from typing import List

import numpy as np

from mmext.data import BoxTable

from .error_breakdown import ErrorBreakdown
from .predictions import Detections

#: Columns of :func:`error_rows`.
ERROR_COLUMNS = ('file_name', 'image_id', 'class', 'type', 'score', 'iou',
                 'predicted_class', 'x1', 'y1', 'x2', 'y2', 'gt_x1', 'gt_y1',
                 'gt_x2', 'gt_y2')


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
             - w * h)
    return w * h / union if union > 0 else 0.0


def error_rows(gt: BoxTable, dets: Detections,
               breakdown: ErrorBreakdown) -> List[dict]:
    """Every evaluated detection (``type`` ``'tp'`` or its error type) and
    every missed GT box (``type`` ``'missed'``), in pixels (xyxy).

    ``class`` is the class whose AP the row counts for (the GT's class for
    ``classification`` and ``missed`` rows, as in the breakdown's counts);
    ``predicted_class`` is the detection's. ``iou`` and ``gt_*`` describe
    the GT box the error aims at (or the missed box); empty for background
    errors.
    """
    names = gt.class_names
    row_of = {int(i): n for n, i in enumerate(gt.image_ids)}
    rows = []
    for r in range(len(dets)):
        kind = breakdown.det_error[r] or (
            'tp' if breakdown.det_matched_gt[r] >= 0 else '')
        if not kind:
            continue  # beyond COCO's 100 per image, or on an ignored box
        g = int(breakdown.det_target[r] if kind != 'tp' else
                breakdown.det_matched_gt[r])
        box = [float(dets.x1[r]), float(dets.y1[r]), float(dets.x2[r]),
               float(dets.y2[r])]
        gt_box = ([float(gt.x1[g]), float(gt.y1[g]), float(gt.x2[g]),
                   float(gt.y2[g])] if g >= 0 else [None] * 4)
        cls = names[gt.label[g] if kind == 'classification' else dets.label[r]]
        n = row_of[int(dets.image_id[r])]
        rows.append(dict(zip(ERROR_COLUMNS, [
            gt.file_names[n], int(dets.image_id[r]), cls, kind,
            float(dets.score[r]), _iou(box, gt_box) if g >= 0 else None,
            names[dets.label[r]], *box, *gt_box])))
    for g in np.flatnonzero(breakdown.gt_missed):
        n = row_of[int(gt.image_id[g])]
        gt_box = [float(gt.x1[g]), float(gt.y1[g]), float(gt.x2[g]),
                  float(gt.y2[g])]
        rows.append(dict(zip(ERROR_COLUMNS, [
            gt.file_names[n], int(gt.image_id[g]), names[gt.label[g]],
            'missed', None, None, None, None, None, None, None, *gt_box])))
    return rows


def classification_confusion(rows: List[dict],
                             class_names: List[str]) -> np.ndarray:
    """``(K, K)`` counts of classification errors: row = the GT's class,
    column = the class it was taken for (IoU >= 0.5 with a GT box of
    another class, TIDE's classification type)."""
    index = {n: k for k, n in enumerate(class_names)}
    matrix = np.zeros((len(class_names), len(class_names)), dtype=np.int64)
    for row in rows:
        if row['type'] == 'classification':
            matrix[index[row['class']], index[row['predicted_class']]] += 1
    return matrix
