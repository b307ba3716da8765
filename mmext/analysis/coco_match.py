"""COCO matching through pycocotools, read back as flat numpy arrays.

pycocotools decides which detection matches which ground-truth box (greedy
in score order, one GT per detection, crowd/ignore, the IoU threshold). This
module runs :class:`COCOeval` once and exposes its decisions; it does not
match anything itself.
"""
import contextlib
import io
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..data import BoxTable
from .predictions import Detections

#: COCO's standard per-image detection limit for AP.
COCO_MAX_DETS = 100
#: The one area range used: all boxes (COCO's 'all').
AREA_ALL = [0.0, 1e10]


def _quiet(fn, *args, **kwargs):
    """Call a pycocotools function without its progress prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def coco_from_table(gt: BoxTable) -> COCO:
    """Ground truth as a pycocotools COCO (category id = label + 1)."""
    coco = COCO()
    coco.dataset = gt.to_coco()
    _quiet(coco.createIndex)
    return coco


def coco_from_detections(gt_coco: COCO, dets: Detections) -> COCO:
    """Detections as a pycocotools results COCO, like ``COCO.loadRes``."""
    res = COCO()
    w = dets.x2 - dets.x1
    h = dets.y2 - dets.y1
    anns = [
        dict(id=i + 1, image_id=iid, category_id=lab + 1,
             bbox=[x, y, bw, bh], area=bw * bh, score=s, iscrowd=0)
        for i, (iid, lab, x, y, bw, bh, s) in enumerate(
            zip(dets.image_id.tolist(), dets.label.tolist(),
                dets.x1.tolist(), dets.y1.tolist(), w.tolist(), h.tolist(),
                dets.score.tolist()))
    ]
    res.dataset = dict(images=list(gt_coco.dataset['images']),
                       categories=list(gt_coco.dataset['categories']),
                       annotations=anns)
    _quiet(res.createIndex)
    return res


def run_cocoeval(gt_coco: COCO,
                 dt_coco: COCO,
                 max_dets: int = COCO_MAX_DETS,
                 iou_thrs: Optional[Sequence[float]] = None) -> COCOeval:
    """Run COCOeval evaluate + accumulate on the 'all' area range only.

    ``maxDets`` is ``[100, max_dets]`` so that AP at 100 detections per image
    equals COCO's standard AP, while the matches cover ``max_dets``
    detections per image and class (greedy matching in score order makes the
    first 100 decisions identical either way).

    Args:
        gt_coco: Ground truth.
        dt_coco: Detections.
        max_dets: Detections per image and class to match.
        iou_thrs: IoU thresholds; default COCO's 0.50:0.05:0.95.
    """
    ev = COCOeval(gt_coco, dt_coco, iouType='bbox')
    ev.params.areaRng = [AREA_ALL]
    ev.params.areaRngLbl = ['all']
    ev.params.maxDets = sorted({COCO_MAX_DETS, max(int(max_dets), 1)})
    if iou_thrs is not None:
        ev.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
    _quiet(ev.evaluate)
    _quiet(ev.accumulate)
    return ev


def ap_per_class(ev: COCOeval, iou_thr: Optional[float] = None) -> np.ndarray:
    """COCO AP per class at 100 detections (NaN for a class without GT).

    Args:
        ev: An accumulated COCOeval from :func:`run_cocoeval`.
        iou_thr: One IoU threshold (e.g. 0.5 for AP50); None averages over
            all of ``ev.params.iouThrs`` like COCO's AP.
    """
    m = ev.params.maxDets.index(COCO_MAX_DETS)
    prec = ev.eval['precision'][:, :, :, 0, m]
    if iou_thr is not None:
        t = int(np.argmin(np.abs(ev.params.iouThrs - iou_thr)))
        prec = prec[t:t + 1]
    out = np.full(prec.shape[2], np.nan)
    for k in range(prec.shape[2]):
        valid = prec[:, :, k][prec[:, :, k] > -1]
        if valid.size:
            out[k] = valid.mean()
    return out


def mean_ap(ev: COCOeval, iou_thr: Optional[float] = None) -> float:
    """COCO's summary AP (mean over every valid precision entry), or NaN."""
    m = ev.params.maxDets.index(COCO_MAX_DETS)
    prec = ev.eval['precision'][:, :, :, 0, m]
    if iou_thr is not None:
        t = int(np.argmin(np.abs(ev.params.iouThrs - iou_thr)))
        prec = prec[t:t + 1]
    valid = prec[prec > -1]
    return float(valid.mean()) if valid.size else float('nan')


@dataclass
class MatchTable:
    """COCOeval's decisions at one IoU threshold, one row per box.

    Detection arrays: ``det_id`` (1-based id in the results COCO, i.e.
    index + 1 into the Detections), ``det_image``, ``det_label``,
    ``det_score``, ``det_tp`` (matched a non-ignored GT), ``det_ignored``
    (matched a crowd/ignored GT: neither TP nor FP), ``det_gt`` (matched GT
    annotation id, 0 if none). Ground-truth arrays: ``gt_id`` (annotation
    id = BoxTable row + 1), ``gt_image``, ``gt_label``, ``gt_ignored``.
    """
    iou_thr: float
    det_id: np.ndarray
    det_image: np.ndarray
    det_label: np.ndarray
    det_score: np.ndarray
    det_tp: np.ndarray
    det_ignored: np.ndarray
    det_gt: np.ndarray
    gt_id: np.ndarray
    gt_image: np.ndarray
    gt_label: np.ndarray
    gt_ignored: np.ndarray


def match_table(ev: COCOeval, gt: BoxTable, dets: Detections,
                iou_thr: float) -> MatchTable:
    """Read dtMatches/dtIgnore from ``ev.evalImgs`` at ``iou_thr``.

    Args:
        ev: An evaluated COCOeval from :func:`run_cocoeval`.
        gt: The ground truth ``ev`` was built from.
        dets: The detections ``ev`` was built from.
        iou_thr: One of ``ev.params.iouThrs``.
    """
    thrs = ev.params.iouThrs
    t = int(np.argmin(np.abs(thrs - iou_thr)))
    if abs(thrs[t] - iou_thr) > 1e-9:
        raise ValueError(f'iou_thr {iou_thr} is not one of {list(thrs)}')
    ids, matches, ignores = [], [], []
    for e in ev.evalImgs:
        if e is None or not len(e['dtIds']):
            continue
        ids.append(np.asarray(e['dtIds'], dtype=np.int64))
        matches.append(np.asarray(e['dtMatches'][t], dtype=np.int64))
        ignores.append(np.asarray(e['dtIgnore'][t], dtype=bool))
    det_id = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    det_gt = np.concatenate(matches) if matches else np.zeros(0, np.int64)
    det_ign = np.concatenate(ignores) if ignores else np.zeros(0, bool)
    rows = det_id - 1  # results ids are Detections row + 1
    return MatchTable(
        iou_thr=float(thrs[t]),
        det_id=det_id,
        det_image=dets.image_id[rows],
        det_label=dets.label[rows],
        det_score=dets.score[rows],
        det_tp=(det_gt > 0) & ~det_ign,
        det_ignored=det_ign,
        det_gt=det_gt,
        gt_id=np.arange(1, len(gt) + 1, dtype=np.int64),
        gt_image=gt.image_id.copy(),
        gt_label=gt.label.copy(),
        gt_ignored=gt.ignore.copy())
