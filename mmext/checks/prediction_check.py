"""Predictions sanity: are a model's boxes spread like the objects they hit?

The user's failing run had predictions "stuck together in clusters, no
correlation with ground truth". Given predictions (mmdet's pickle from
``tools/test.py --out``, read by :mod:`mmext.evaluation.predictions`) and the
test set's boxes, this measures exactly that:
how the predicted box centres spread over the image compared with the
ground-truth centres, whether predictions sit nearer their own image's objects
than another image's (a model that ignores the image does not), boxes per
image, and the score distribution.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
from mmdet.evaluation.functional import bbox_overlaps

from mmext.data import BoxTable
from mmext.utils import MMExtError
from mmext.checks.check_result import CheckResult, make_check
from mmext.evaluation.predictions import Detections


@dataclass
class PredictionStats:
    """Numbers behind the prediction checks.

    Attributes:
        scores: (P,) scores of every prediction.
        pred_centres: (Q, 2) centres of predictions at or above the score
            threshold, as fractions of image width and height.
        gt_centres: (G, 2) ground-truth centres, same units.
        preds_per_image: (I,) predictions at or above the threshold per image.
        gt_per_image: (I,) ground-truth boxes per image.
        spread_ratio: Smallest over x, y of std(pred centres) / std(GT
            centres); well below 1 means collapsed predictions.
        densest_cell_pred, densest_cell_gt: Share of centres in the fullest
            cell of a 10x10 grid over the image.
        own_vs_other: Median distance (image fractions) from a prediction to
            the nearest GT of its own image divided by the same for the GT of
            another image; near 0 for a working detector, near 1 for one that
            ignores its input.
        recall_iou50: Share of GT boxes overlapped (IoU >= 0.5) by a
            prediction at or above the threshold.
    """
    scores: np.ndarray
    pred_centres: np.ndarray
    gt_centres: np.ndarray
    preds_per_image: np.ndarray
    gt_per_image: np.ndarray
    spread_ratio: float
    densest_cell_pred: float
    densest_cell_gt: float
    own_vs_other: float
    recall_iou50: float


def _centres(boxes: np.ndarray, wh: Tuple[float, float]) -> np.ndarray:
    return ((boxes[:, :2] + boxes[:, 2:]) / 2) / np.asarray(wh)


def _nearest(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    if len(points) == 0 or len(targets) == 0:
        return np.zeros(0)
    return np.linalg.norm(points[:, None] - targets[None], axis=2).min(1)


def _densest_share(centres: np.ndarray, cells: int = 10) -> float:
    if len(centres) == 0:
        return 0.0
    idx = np.clip((centres * cells).astype(int), 0, cells - 1)
    counts = np.bincount(idx[:, 1] * cells + idx[:, 0], minlength=cells * cells)
    return float(counts.max() / len(centres))


def prediction_stats(dets: Detections, gt: BoxTable, score_thr: float = 0.3,
                     seed: int = 0) -> PredictionStats:
    """Spread, per-image counts and GT correspondence of predictions.

    Args:
        dets: Predictions aligned with ``gt``
            (:func:`mmext.evaluation.predictions.load_detections`).
        gt: The test set's boxes (ignored boxes are left out).
        score_thr: Predictions below this score are left out of everything
            but the score histogram.
        seed: Seed of the image permutation for ``own_vs_other``.

    Raises:
        MMExtError: no prediction belongs to an image of ``gt``.
    """
    gt = gt.select(~gt.ignore)
    ids = sorted(set(dets.image_id.tolist()) & set(gt.image_ids.tolist()))
    if not ids:
        raise MMExtError(f'{dets.source}: no prediction has an image id of '
                         f'{gt.source}')
    size = {int(i): (float(w), float(h))
            for i, w, h in zip(gt.image_ids, gt.widths, gt.heights)}
    kept = dets.select(dets.score >= score_thr)
    pred_xyxy = np.stack([kept.x1, kept.y1, kept.x2, kept.y2], axis=1)
    boxes = [pred_xyxy[kept.image_id == i] for i in ids]
    gt_boxes = [gt.bboxes()[gt.image_id == i] for i in ids]
    pc = [_centres(b, size[i]) for b, i in zip(boxes, ids)]
    gc = [_centres(g, size[i]) for g, i in zip(gt_boxes, ids)]
    all_pc, all_gc = np.concatenate(pc), np.concatenate(gc)
    spread = (float(np.min(all_pc.std(0) / np.maximum(all_gc.std(0), 1e-9)))
              if len(all_pc) > 1 and len(all_gc) > 1 else float('nan'))
    # Another image's GT as a baseline: a model that ignores its input is no
    # nearer its own image's objects than anyone else's.
    perm = np.random.default_rng(seed).permutation(len(ids))
    own = np.concatenate([_nearest(p, g) for p, g in zip(pc, gc)])
    other = np.concatenate([_nearest(pc[k], gc[perm[k]]) for k in range(len(ids))
                            if perm[k] != k] or [np.zeros(0)])
    ratio = (float(np.median(own) / max(np.median(other), 1e-9))
             if len(own) and len(other) else float('nan'))
    hits = sum(int((bbox_overlaps(g, b).max(1) >= 0.5).sum())
               for b, g in zip(boxes, gt_boxes) if len(b) and len(g))
    n_gt = sum(len(g) for g in gt_boxes)
    return PredictionStats(
        scores=dets.score[np.isin(dets.image_id, ids)],
        pred_centres=all_pc, gt_centres=all_gc,
        preds_per_image=np.array([len(b) for b in boxes]),
        gt_per_image=np.array([len(g) for g in gt_boxes]),
        spread_ratio=spread,
        densest_cell_pred=_densest_share(all_pc),
        densest_cell_gt=_densest_share(all_gc),
        own_vs_other=ratio,
        recall_iou50=hits / n_gt if n_gt else float('nan'))


def prediction_checks(stats: PredictionStats, score_thr: float,
                      scope: str = 'predictions') -> List[CheckResult]:
    """Turn :class:`PredictionStats` into warn/pass rows.

    Predictions are a symptom, not the data: problems here warn.
    """
    n_img = len(stats.preds_per_image)
    rows = [
        make_check(
            'predicted centres spread like the GT centres', scope,
            [f'pred/GT centre std ratio {stats.spread_ratio:.2f} < 0.5 (collapsed)']
            if stats.spread_ratio < 0.5 else [], len(stats.pred_centres), 'warn',
            detail=f'std ratio {stats.spread_ratio:.2f}'),
        make_check(
            'predictions not clustered in one place', scope,
            [f'{stats.densest_cell_pred:.0%} of predicted centres in one 10x10 '
             f'grid cell (GT: {stats.densest_cell_gt:.0%})']
            if stats.densest_cell_pred > max(0.2, 3 * stats.densest_cell_gt) else [],
            len(stats.pred_centres), 'warn',
            detail=f'densest cell pred {stats.densest_cell_pred:.0%}, '
            f'GT {stats.densest_cell_gt:.0%}'),
        make_check(
            'predictions nearer their own image\'s GT than another\'s', scope,
            # A working detector sits on its own image's objects (ratio near
            # 0); an untrained one measured 0.77 on the demo data.
            [f'median distance ratio own/other image {stats.own_vs_other:.2f} > 0.5 '
             '(little correlation with the GT)'] if stats.own_vs_other > 0.5 else [],
            len(stats.pred_centres), 'warn',
            detail=f'own/other {stats.own_vs_other:.2f}'),
        make_check(
            f'GT boxes found (IoU >= 0.5, score >= {score_thr:g})', scope,
            [f'recall {stats.recall_iou50:.1%} < 10%']
            if stats.recall_iou50 < 0.1 else [], int(stats.gt_per_image.sum()), 'warn',
            detail=f'recall {stats.recall_iou50:.1%}'),
        make_check(
            'boxes per image', scope,
            ['no prediction above the threshold'] if stats.preds_per_image.sum() == 0
            else [], n_img, 'warn',
            detail=_per_image_detail(stats)),
    ]
    return rows


def _per_image_detail(stats: PredictionStats) -> str:
    p, g = stats.preds_per_image, stats.gt_per_image
    return (f'pred mean {p.mean():.1f} median {np.median(p):.0f} max {p.max()}; '
            f'GT mean {g.mean():.1f} max {g.max()}') if len(p) else 'no images'


def score_histogram(scores: np.ndarray, bins: int = 10) -> Dict[str, int]:
    """Number of predictions per score bin of width 1/bins (``'0.0-0.1'``)."""
    counts, edges = np.histogram(scores, bins=bins, range=(0.0, 1.0))
    return {f'{edges[k]:.1f}-{edges[k + 1]:.1f}': int(c) for k, c in enumerate(counts)}
