"""AP, AP50 and recall per class and box size, COCO's way.

Defects are often tiny, and one mAP hides whether the small ones are found.
COCOeval already evaluates by area range (a GT box outside the range is
ignored, and so is an unmatched detection outside it); this runs it with
COCO's ranges (small < 32², medium < 96², large) or the user's, and reads
per class: AP (IoU 0.50:0.95), AP50, the recall at IoU 0.5 (100 detections
per image) and the number of GT boxes in the range.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mmext.data import BoxTable

from .coco_match import (COCO_MAX_DETS, _quiet, coco_from_detections,
                         coco_from_table)
from .predictions import Detections

#: COCO's ranges, by the square root of the box area (pixels).
COCO_SIZE_EDGES = (0.0, 32.0, 96.0, 1e5)


def size_ranges(edges: Sequence[float]) -> List[Tuple[str, float, float]]:
    """``(label, lo, hi)`` ranges of sqrt(area) between consecutive edges,
    labelled ``'<lo>-<hi>px'`` (the last ``'>=<lo>px'``)."""
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])) \
            or edges[0] < 0:
        raise ValueError(f'size edges {edges}: need 2 or more increasing '
                         'numbers >= 0')
    out = []
    for lo, hi in zip(edges, edges[1:]):
        label = f'>={lo:g}px' if hi >= 1e5 else f'{lo:g}-{hi:g}px'
        out.append((label, lo, hi))
    return out


def ap_by_size(gt: BoxTable, dets: Detections,
               edges: Optional[Sequence[float]] = None) -> List[dict]:
    """One row per class and size range (class ``'all'``: the mean).

    Args:
        gt: Ground truth; ``dets``: detections aligned with it.
        edges: sqrt(area) edges in pixels (default COCO's 0, 32, 96, inf).

    Returns:
        Dicts with ``class``, ``size``, ``num_gt``, ``ap``, ``ap50`` and
        ``recall50`` (None where the range has no GT box of the class).
    """
    from pycocotools.cocoeval import COCOeval
    ranges = size_ranges(edges or COCO_SIZE_EDGES)
    gt_coco = coco_from_table(gt)
    ev = COCOeval(gt_coco, coco_from_detections(gt_coco, dets), 'bbox')
    ev.params.areaRng = [[lo ** 2, hi ** 2] for _, lo, hi in ranges]
    ev.params.areaRngLbl = [label for label, _, _ in ranges]
    ev.params.maxDets = [COCO_MAX_DETS]
    _quiet(ev.evaluate)
    _quiet(ev.accumulate)
    prec = ev.eval['precision'][:, :, :, :, 0]    # T, R, K, A
    recall = ev.eval['recall'][0, :, :, 0]         # IoU 0.5: K, A
    area = (gt.x2 - gt.x1) * (gt.y2 - gt.y1)
    rows = []
    names = list(gt.class_names) + ['all']
    for k, name in enumerate(names):
        for a, (label, lo, hi) in enumerate(ranges):
            in_range = (~gt.ignore & (area >= lo ** 2) & (area < hi ** 2))
            if name != 'all':
                in_range &= gt.label == k
            ks = slice(None) if name == 'all' else slice(k, k + 1)
            p_all, p50 = prec[:, :, ks, a], prec[:1, :, ks, a]
            r50 = recall[ks, a]
            rows.append(dict(
                **{'class': name}, size=label, num_gt=int(in_range.sum()),
                ap=_mean_valid(p_all), ap50=_mean_valid(p50),
                recall50=_mean_valid(r50)))
    return rows


def _mean_valid(values: np.ndarray) -> Optional[float]:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None
