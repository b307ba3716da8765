"""Per-class COCO AP under resampling of the validation images.

pycocotools matches once (:func:`~mmext.evaluation.coco_match.run_cocoeval`);
this module re-accumulates those matches with a weight per image, so a
bootstrap resample (image i drawn ``w_i`` times) costs cumulative sums, not
a new matching. The accumulation is COCOeval's own, with weights:

- per class, the detections of all images (the first ``maxDet=100`` of each
  image) in descending score order (stable, as COCOeval's mergesort);
- ``TP(d) = sum of w over detections up to d that matched a non-ignored GT``,
  ``FP(d)`` likewise for unmatched non-ignored ones, ``npig = sum_i w_i
  npig_i``;
- recall ``TP / npig``, precision ``TP / (TP + FP + eps)`` made monotone from
  the end, read at COCO's 101 recall thresholds (0 beyond the last recall);
- AP = the mean over recall thresholds and IoU thresholds (0.50:0.95, or one
  of them for AP50).

With every ``w_i = 1`` this is exactly COCOeval's per-class AP (tested).
:func:`paired_bootstrap` draws the same image resample for every arm and
seed, so the per-class AP *difference* between arms is resampled paired.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools.cocoeval import COCOeval

from mmext.utils import MMExtError
from mmext.evaluation.coco_match import COCO_MAX_DETS


@dataclass
class ClassMatches:
    """One class's COCOeval decisions, detections in accumulation order.

    Attributes:
        image: (D,) index into the evaluation's image list of each detection.
        tp: (T, D) matched a non-ignored GT, per IoU threshold.
        fp: (T, D) unmatched and not ignored, per IoU threshold.
        npig: (I,) non-ignored GT boxes of the class per image.
    """
    image: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    npig: np.ndarray


@dataclass
class EvalMatches:
    """Matches of one set of detections against one validation set."""
    image_ids: List[object]
    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    classes: List[ClassMatches]


def eval_matches(ev: COCOeval) -> EvalMatches:
    """Read an evaluated COCOeval (one area range, 'all') into arrays.

    Args:
        ev: From :func:`~mmext.evaluation.coco_match.run_cocoeval`.
    """
    p = ev.params
    if len(p.areaRng) != 1:
        raise ValueError('eval_matches needs the single area range of '
                         'run_cocoeval')
    num_img, num_t = len(p.imgIds), len(p.iouThrs)
    max_det = COCO_MAX_DETS
    classes = []
    for k in range(len(p.catIds)):
        images, scores, tps, fps = [], [], [], []
        npig = np.zeros(num_img)
        for i in range(num_img):
            e = ev.evalImgs[k * num_img + i]
            if e is None:
                continue
            npig[i] = np.count_nonzero(np.asarray(e['gtIgnore']) == 0)
            s = np.asarray(e['dtScores'][:max_det], np.float64)
            if not s.size:
                continue
            matched = np.asarray(e['dtMatches'])[:, :max_det] > 0
            ignored = np.asarray(e['dtIgnore'])[:, :max_det].astype(bool)
            images.append(np.full(s.size, i))
            scores.append(s)
            tps.append(matched & ~ignored)
            fps.append(~matched & ~ignored)
        if scores:
            order = np.argsort(-np.concatenate(scores), kind='mergesort')
            classes.append(ClassMatches(
                image=np.concatenate(images)[order],
                tp=np.concatenate(tps, axis=1)[:, order],
                fp=np.concatenate(fps, axis=1)[:, order], npig=npig))
        else:
            classes.append(ClassMatches(
                np.zeros(0, int), np.zeros((num_t, 0), bool),
                np.zeros((num_t, 0), bool), npig))
    return EvalMatches(list(p.imgIds), np.asarray(p.iouThrs),
                       np.asarray(p.recThrs), classes)


def weighted_class_ap(cm: ClassMatches, weights: np.ndarray,
                      rec_thrs: np.ndarray,
                      iou_index: Optional[int] = None) -> np.ndarray:
    """AP of one class for each row of image weights.

    Args:
        cm: The class's matches.
        weights: (B, I) weight of every image in each resample.
        rec_thrs: COCO's recall thresholds.
        iou_index: One IoU threshold (e.g. the index of 0.5), or None for
            the mean over all.

    Returns:
        (B,) AP; NaN where the resample holds no GT box of the class.
    """
    weights = np.atleast_2d(np.asarray(weights, np.float64))
    npig = weights @ cm.npig
    rows = range(cm.tp.shape[0]) if iou_index is None else [iou_index]
    ap = np.zeros((weights.shape[0], len(rows)))
    if cm.image.size:
        w = weights[:, cm.image]
        for j, t in enumerate(rows):
            tp = np.cumsum(w * cm.tp[t], axis=1)
            fp = np.cumsum(w * cm.fp[t], axis=1)
            with np.errstate(invalid='ignore', divide='ignore'):
                rc = tp / npig[:, None]
            pr = tp / (tp + fp + np.spacing(1))
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for b in range(weights.shape[0]):
                if npig[b] <= 0:
                    continue
                idx = np.searchsorted(rc[b], rec_thrs, side='left')
                valid = idx < rc.shape[1]
                ap[b, j] = pr[b, idx[valid]].sum() / len(rec_thrs)
    out = ap.mean(axis=1)
    out[npig <= 0] = np.nan
    return out


def class_ap(matches: EvalMatches, weights: Optional[np.ndarray] = None,
             iou_thr: Optional[float] = None) -> np.ndarray:
    """Per-class AP for image weights (default all 1: COCOeval's AP).

    Returns:
        (B, C) AP (NaN for a class without GT in the resample).
    """
    num_img = len(matches.image_ids)
    if weights is None:
        weights = np.ones((1, num_img))
    t = None
    if iou_thr is not None:
        t = int(np.argmin(np.abs(matches.iou_thrs - iou_thr)))
    return np.stack([weighted_class_ap(cm, weights, matches.rec_thrs, t)
                     for cm in matches.classes], axis=1)


def resample_weights(num_images: int, num_resamples: int,
                     seed: int = 0) -> np.ndarray:
    """(B, I) bootstrap counts: ``num_images`` draws with replacement each."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_images, size=(num_resamples, num_images))
    return np.stack([np.bincount(d, minlength=num_images) for d in draws])


def paired_bootstrap(control: Sequence[EvalMatches],
                     arm: Sequence[EvalMatches],
                     class_names: Sequence[str],
                     num_resamples: int = 1000, seed: int = 0,
                     iou_thr: Optional[float] = None,
                     confidence: float = 0.95,
                     chunk: int = 100) -> List[Dict[str, object]]:
    """Per-class AP delta (arm - control) with a paired bootstrap interval.

    With several seeds per arm (``control[s]`` paired with ``arm[s]``) the
    delta of a resample is the mean over seeds of the seed's delta; every
    seed sees the same image resample.

    Args:
        control: The control's matches, one per seed.
        arm: The arm's matches, one per seed (same number as control).
        class_names: Class names, in label order.
        num_resamples: Bootstrap resamples.
        seed: Seed of the resampling.
        iou_thr: None for AP@[.5:.95], 0.5 for AP50.
        confidence: Interval coverage (0.95: the 2.5% and 97.5% quantiles).
        chunk: Resamples accumulated at once (memory: chunk x detections).

    Returns:
        One row per class: ``class``, ``control``, ``arm``, ``delta``
        (point estimates on all images), ``ci_low``, ``ci_high``,
        ``p_le_0`` (share of resamples with delta <= 0), ``num_resamples``.

    Raises:
        MMExtError: the runs were evaluated on different images or classes.
    """
    if len(control) != len(arm) or not control:
        raise MMExtError('paired bootstrap: control and arm need the same '
                         f'number of seeds (got {len(control)} and '
                         f'{len(arm)})')
    ref = control[0]
    for m in list(control) + list(arm):
        if m.image_ids != ref.image_ids:
            raise MMExtError('paired bootstrap: the runs were evaluated on '
                             'different validation images')
        if len(m.classes) != len(class_names):
            raise MMExtError('paired bootstrap: the runs have different '
                             'class lists')
    num_img = len(ref.image_ids)
    point_c = np.mean([class_ap(m, None, iou_thr)[0] for m in control], 0)
    point_a = np.mean([class_ap(m, None, iou_thr)[0] for m in arm], 0)
    weights = resample_weights(num_img, num_resamples, seed)
    deltas = []
    for start in range(0, num_resamples, chunk):
        w = weights[start:start + chunk]
        d = np.mean([class_ap(a, w, iou_thr) - class_ap(c, w, iou_thr)
                     for a, c in zip(arm, control)], axis=0)
        deltas.append(d)
    deltas = np.concatenate(deltas)
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    rows = []
    for k, name in enumerate(class_names):
        d = deltas[:, k][~np.isnan(deltas[:, k])]
        rows.append({
            'class': name, 'control': _num(point_c[k]), 'arm': _num(point_a[k]),
            'delta': _num(point_a[k] - point_c[k]),
            'ci_low': _num(np.quantile(d, lo_q)) if d.size else None,
            'ci_high': _num(np.quantile(d, hi_q)) if d.size else None,
            'p_le_0': float(np.mean(d <= 0)) if d.size else None,
            'num_resamples': int(d.size)})
    return rows


def _num(v) -> Optional[float]:
    v = float(v)
    return None if np.isnan(v) else v
