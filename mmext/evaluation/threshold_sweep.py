"""Confidence-threshold sweep with exact COCO matching.

pycocotools' COCOeval matches every detection once (at the IoU threshold,
greedy in score order, crowd/ignore respected, all detections kept). Because
greedy matching in score order does not look at lower-scored detections,
keeping only the detections with ``score >= t`` keeps exactly the first
matches, so TP(t) and FP(t) are cumulative sums over the detections sorted by
score, read at every threshold of the grid:

    precision(t) = TP / (TP + FP)        recall(t) = TP / N_gt
    F1(t) = 2 TP / (2 TP + FP + FN)      FN(t) = N_gt - TP(t)
    detection rate(t) = share of images with >= 1 GT box that keep
                        >= 1 correct detection

N_gt counts non-ignored GT boxes, so recall <= 1 and TP + FN = N_gt always.
The AP reported is COCOeval's own (accumulate on the same evaluation). The
evaluation runs on faster-coco-eval's compiled code when it is installed,
else on pycocotools (``backend``); both give the same matches.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmext.data import BoxTable
from mmext.evaluation.coco_match import MatchTable, ap_per_class, evaluate_boxes, mean_ap
from mmext.evaluation.predictions import Detections

#: Name of the row that sums every class.
ALL_CLASSES = 'all'


def default_thresholds(step: float = 0.05) -> np.ndarray:
    """The grid 0, step, 2 step, ..., 1 (rounded to 6 decimals)."""
    n = int(round(1.0 / step))
    return np.round(np.linspace(0.0, n * step, n + 1), 6)


@dataclass
class ClassCurve:
    """Counts and rates of one class (or 'all') at every threshold.

    Arrays have one entry per threshold. ``precision`` is NaN where no
    detection is kept; ``recall``/``f1``/``detection_rate`` are NaN where the
    class has no ground truth.
    """
    name: str
    num_gt: int
    num_images: int
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    detection_rate: np.ndarray
    ap: float = float('nan')
    ap50: float = float('nan')
    pr_recall: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pr_precision: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def best_f1(self, thresholds: np.ndarray) -> Tuple[float, float]:
        """``(threshold, F1)`` with the highest F1 (lowest threshold on ties)."""
        if not np.any(np.isfinite(self.f1)):
            return float('nan'), float('nan')
        i = int(np.nanargmax(self.f1))
        return float(thresholds[i]), float(self.f1[i])


@dataclass
class SweepResult:
    """A threshold sweep: one :class:`ClassCurve` per class plus 'all'."""
    class_names: Tuple[str, ...]
    thresholds: np.ndarray
    iou_thr: float
    curves: List[ClassCurve]
    matches: MatchTable
    map: float
    map50: float

    def curve(self, name: str) -> ClassCurve:
        """The curve of class ``name`` (or ``'all'``)."""
        for c in self.curves:
            if c.name == name:
                return c
        raise KeyError(name)


def _counts(scores: np.ndarray, tp: np.ndarray, num_gt: int,
            thresholds: np.ndarray) -> Dict[str, np.ndarray]:
    """TP/FP/FN at each threshold from detections of one class."""
    order = np.argsort(-scores, kind='mergesort')
    s = scores[order]
    cum_tp = np.concatenate([[0], np.cumsum(tp[order])])
    # number of detections with score >= t, for every t
    kept = np.searchsorted(-s, -thresholds, side='right')
    tps = cum_tp[kept].astype(np.int64)
    fps = (kept - tps).astype(np.int64)
    return dict(tp=tps, fp=fps, fn=num_gt - tps, cum_tp=cum_tp[1:])


def _rates(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray,
           num_gt: int) -> Dict[str, np.ndarray]:
    with np.errstate(divide='ignore', invalid='ignore'):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = tp / num_gt if num_gt else np.full(tp.shape, np.nan)
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
        if not num_gt:
            f1 = np.full(tp.shape, np.nan)
    return dict(precision=precision, recall=recall, f1=f1)


def _best_tp_scores(m: MatchTable, image_ids: np.ndarray,
                    num_classes: int) -> np.ndarray:
    """(images, classes) array of the best TP score, -1 where none."""
    best = np.full((len(image_ids), num_classes), -1.0)
    sel = m.det_tp
    rows = np.searchsorted(image_ids, m.det_image[sel])
    np.maximum.at(best, (rows, m.det_label[sel]), m.det_score[sel])
    return best


def _has_gt(m: MatchTable, image_ids: np.ndarray,
            num_classes: int) -> np.ndarray:
    """(images, classes) boolean: the image has a non-ignored GT box."""
    has = np.zeros((len(image_ids), num_classes), dtype=bool)
    sel = ~m.gt_ignored
    has[np.searchsorted(image_ids, m.gt_image[sel]), m.gt_label[sel]] = True
    return has


def _detection_rate(best: np.ndarray, has_gt: np.ndarray,
                    thresholds: np.ndarray) -> np.ndarray:
    """Share of images with GT whose best TP score is >= each threshold."""
    b = np.sort(best[has_gt])
    if not b.size:
        return np.full(thresholds.shape, np.nan)
    return (b.size - np.searchsorted(b, thresholds, side='left')) / b.size


def _class_curve(name: str, scores: np.ndarray, tp: np.ndarray, num_gt: int,
                 best: np.ndarray, has_gt: np.ndarray,
                 thresholds: np.ndarray) -> ClassCurve:
    c = _counts(scores, tp, num_gt, thresholds)
    r = _rates(c['tp'], c['fp'], c['fn'], num_gt)
    n = np.arange(1, len(c['cum_tp']) + 1)
    return ClassCurve(
        name=name,
        num_gt=num_gt,
        num_images=int(has_gt.sum()),
        tp=c['tp'],
        fp=c['fp'],
        fn=c['fn'],
        detection_rate=_detection_rate(best, has_gt, thresholds),
        pr_recall=c['cum_tp'] / num_gt if num_gt else np.zeros(0),
        pr_precision=c['cum_tp'] / n if num_gt else np.zeros(0),
        **r)


def _max_dets_per_image_class(dets: Detections) -> int:
    if not len(dets):
        return 1
    # one int key per (image, class): np.unique on it is ~10x faster than
    # on the stacked pair (axis=1) at 500k detections
    _, img = np.unique(dets.image_id, return_inverse=True)
    key = img.astype(np.int64) * (int(dets.label.max()) + 1) + dets.label
    return int(np.bincount(key).max())


def sweep_thresholds(gt: BoxTable,
                     dets: Detections,
                     thresholds: Optional[Sequence[float]] = None,
                     iou_thr: float = 0.5,
                     backend: str = 'auto') -> SweepResult:
    """Sweep the confidence threshold over a grid, per class and overall.

    Args:
        gt: Ground truth (ignored boxes are crowd: neither needed nor FP).
        dets: Detections aligned with ``gt`` (see :func:`load_detections`).
        thresholds: Score thresholds in [0, 1]; a detection is kept when
            ``score >= t``. Default: 0, 0.05, ..., 1.
        iou_thr: IoU threshold for a match, one of COCO's 0.50:0.05:0.95.
        backend: ``'auto'`` (faster-coco-eval if installed, else
            pycocotools), ``'faster-coco-eval'`` or ``'pycocotools'``.

    Returns:
        A :class:`SweepResult`; its AP/AP50 are COCOeval's (100 detections
        per image), its counts use every detection.
    """
    thr = np.asarray(
        default_thresholds() if thresholds is None else sorted(thresholds),
        dtype=np.float64)
    ev, m = evaluate_boxes(gt, dets, iou_thr,
                           max_dets=_max_dets_per_image_class(dets),
                           backend=backend)
    k_all = len(gt.class_names)
    image_ids = np.sort(gt.image_ids)
    best = _best_tp_scores(m, image_ids, k_all)
    has_gt = _has_gt(m, image_ids, k_all)
    ap, ap50 = ap_per_class(ev), ap_per_class(ev, 0.5)
    curves = []
    kept = ~m.det_ignored
    for k, name in enumerate(gt.class_names):
        sel = kept & (m.det_label == k)
        num_gt = int(np.sum((m.gt_label == k) & ~m.gt_ignored))
        c = _class_curve(name, m.det_score[sel], m.det_tp[sel], num_gt,
                         best[:, k], has_gt[:, k], thr)
        c.ap, c.ap50 = float(ap[k]), float(ap50[k])
        curves.append(c)
    overall = _class_curve(ALL_CLASSES, m.det_score[kept], m.det_tp[kept],
                           int(np.sum(~m.gt_ignored)), best.max(axis=1),
                           has_gt.any(axis=1), thr)
    overall.ap, overall.ap50 = mean_ap(ev), mean_ap(ev, 0.5)
    curves.append(overall)
    return SweepResult(
        class_names=tuple(gt.class_names), thresholds=thr,
        iou_thr=m.iou_thr, curves=curves, matches=m,
        map=overall.ap, map50=overall.ap50)


def images_lost(result: SweepResult, gt: BoxTable, low: float,
                high: float, dets: Optional[Detections] = None) -> List[dict]:
    """Images with a correct detection at ``low`` but none at ``high``.

    Args:
        result: A sweep.
        gt: Its ground truth (for file names and box sizes).
        low: The lower score threshold (e.g. 0.25).
        high: The higher score threshold (e.g. 0.6).

    Returns:
        One dict per lost image, sorted by best score (highest first):
        ``image_id``, ``file_name``, ``best_score`` (its best correct
        detection, in [low, high)), ``class`` of that detection, and the
        matched GT box's ``box_w``/``box_h`` (pixels), ``box_area_pct``
        (percent of the image), ``ratio_h_over_w`` (h/w, the anchor ratio
        of mmdet and tools/anchor_fit.py), and ``gt_box`` / ``det_box``
        (xyxy pixels, for drawing; ``det_box`` only with ``dets``, the
        detections of the sweep).
    """
    if low > high:
        low, high = high, low
    m = result.matches
    tp = np.flatnonzero(m.det_tp)
    out = []
    images = {int(i): n for n, i in enumerate(gt.image_ids)}
    for iid in np.unique(m.det_image[tp]):
        mine = tp[m.det_image[tp] == iid]
        j = mine[np.argmax(m.det_score[mine])]
        score = float(m.det_score[j])
        if not low <= score < high:
            continue
        g = int(m.det_gt[j]) - 1  # GT annotation id = BoxTable row + 1
        w = float(gt.x2[g] - gt.x1[g])
        h = float(gt.y2[g] - gt.y1[g])
        n = images[int(iid)]
        out.append(
            dict(image_id=int(iid), file_name=gt.file_names[n],
                 best_score=score, **{'class': gt.class_names[gt.label[g]]},
                 box_w=w, box_h=h,
                 box_area_pct=100.0 * w * h / (gt.widths[n] * gt.heights[n]),
                 ratio_h_over_w=h / w,
                 gt_box=[float(gt.x1[g]), float(gt.y1[g]), float(gt.x2[g]),
                         float(gt.y2[g])],
                 **({} if dets is None else dict(det_box=[
                     float(getattr(dets, k)[m.det_id[j] - 1])
                     for k in ('x1', 'y1', 'x2', 'y2')]))))
    return sorted(out, key=lambda r: -r['best_score'])


def _num(v: float) -> Optional[float]:
    """A float for JSON: NaN becomes None."""
    return None if v is None or not np.isfinite(v) else float(v)


def sweep_rows(result: SweepResult) -> List[dict]:
    """One flat dict per (class, threshold), for CSV/JSON."""
    rows = []
    for c in result.curves:
        for i, t in enumerate(result.thresholds):
            rows.append(
                dict(**{'class': c.name}, threshold=float(t),
                     tp=int(c.tp[i]), fp=int(c.fp[i]), fn=int(c.fn[i]),
                     precision=_num(c.precision[i]),
                     recall=_num(c.recall[i]), f1=_num(c.f1[i]),
                     detection_rate=_num(c.detection_rate[i])))
    return rows


def sweep_summary(result: SweepResult) -> List[dict]:
    """One dict per class (and 'all'): GT count, AP, best-F1 threshold."""
    out = []
    for c in result.curves:
        t, f1 = c.best_f1(result.thresholds)
        i = int(np.argmin(np.abs(result.thresholds - t))) if np.isfinite(
            t) else None
        out.append(
            dict(**{'class': c.name}, num_gt=c.num_gt,
                 num_images=c.num_images, ap=_num(c.ap), ap50=_num(c.ap50),
                 best_f1_threshold=_num(t), best_f1=_num(f1),
                 precision_at_best=None if i is None else _num(
                     c.precision[i]),
                 recall_at_best=None if i is None else _num(c.recall[i])))
    return out
