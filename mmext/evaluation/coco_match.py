"""COCO matching through pycocotools or faster-coco-eval, as numpy arrays.

The library decides which detection matches which ground-truth box (greedy
in score order, one GT per detection, crowd/ignore, the IoU threshold). This
module runs one COCO evaluation and exposes its decisions; it does not
match anything itself. Two backends give the same decisions:

- ``'faster-coco-eval'``: its compiled evaluate + accumulate; the matches
  come from its ``eval['matched']`` (``"dtId_gtId"`` pairs, crowd matches
  included), read at one IoU threshold.
- ``'pycocotools'``: :class:`COCOeval` and its ``evalImgs``; the reference
  the tests compare the other backend with, and the fallback when
  faster-coco-eval is not installed.
"""
import contextlib
import copy
import importlib
import io
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmext.data import BoxTable
from mmext.utils import MMExtError
from mmext.utils.gc_pause import gc_paused
from mmext.evaluation.predictions import Detections

#: COCO's standard per-image detection limit for AP.
COCO_MAX_DETS = 100
#: The one area range used: all boxes (COCO's 'all').
AREA_ALL = [0.0, 1e10]
#: ``backend`` values: 'auto' is faster-coco-eval when importable.
BACKENDS = ('auto', 'faster-coco-eval', 'pycocotools')


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


def _result_anns(dets: Detections) -> list:
    """Detections as COCO result dicts (id = row + 1), like ``loadRes``."""
    w = dets.x2 - dets.x1
    h = dets.y2 - dets.y1
    # dict literals: a third of the sweep's time at 500k detections is here
    return [
        {'id': i, 'image_id': iid, 'category_id': cat, 'bbox': [x, y, bw, bh],
         'area': bw * bh, 'score': s, 'iscrowd': 0}
        for i, iid, cat, x, y, bw, bh, s in zip(
            range(1, len(dets) + 1), dets.image_id.tolist(),
            (dets.label + 1).tolist(), dets.x1.tolist(), dets.y1.tolist(),
            w.tolist(), h.tolist(), dets.score.tolist())
    ]


def coco_from_detections(gt_coco: COCO, dets: Detections) -> COCO:
    """Detections as a pycocotools results COCO, like ``COCO.loadRes``."""
    res = COCO()
    res.dataset = dict(images=list(gt_coco.dataset['images']),
                       categories=list(gt_coco.dataset['categories']),
                       annotations=_result_anns(dets))
    _quiet(res.createIndex)
    return res


def _set_params(params, max_dets: int,
                iou_thrs: Optional[Sequence[float]]) -> None:
    """The 'all' area range, maxDets ``[100, max_dets]``, the IoU grid."""
    params.areaRng = [AREA_ALL]
    params.areaRngLbl = ['all']
    params.maxDets = sorted({COCO_MAX_DETS, max(int(max_dets), 1)})
    if iou_thrs is not None:
        params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)


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
    _set_params(ev.params, max_dets, iou_thrs)
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
    return _match_table(float(thrs[t]), det_id - 1, det_gt, det_ign, gt,
                        dets)  # results ids are Detections row + 1


def _faster_coco_eval():
    """The faster_coco_eval module, or None when it is not installed."""
    try:
        return importlib.import_module('faster_coco_eval')
    except ImportError:
        return None


def resolve_backend(backend: str = 'auto') -> str:
    """The backend to use: ``'auto'`` is faster-coco-eval when importable.

    Raises:
        MMExtError: an unknown name, or faster-coco-eval asked for by name
            but not installed.
    """
    if backend not in BACKENDS:
        raise MMExtError(f'backend {backend!r} is not one of {BACKENDS}')
    have_fast = _faster_coco_eval() is not None
    if backend == 'faster-coco-eval' and not have_fast:
        raise MMExtError('backend faster-coco-eval: the package is not '
                         'installed (pip install faster-coco-eval)')
    if backend == 'auto':
        return 'faster-coco-eval' if have_fast else 'pycocotools'
    return backend


def _evaluated_rows(dets: Detections, max_det: int) -> np.ndarray:
    """Rows COCOeval evaluates, in its ``evalImgs`` order.

    COCOeval walks categories, then images (both ascending); per pair it
    keeps the first ``max_det`` detections in descending score order, ties
    in annotation-id order (a stable sort). This is the order the
    pycocotools backend reads its matches in, so both give equal tables.
    """
    rows = np.arange(len(dets))
    order = np.lexsort((rows, -dets.score, dets.image_id, dets.label))
    img, lab = dets.image_id[order], dets.label[order]
    new_pair = np.ones(len(order), dtype=bool)
    new_pair[1:] = (img[1:] != img[:-1]) | (lab[1:] != lab[:-1])
    start = np.maximum.accumulate(np.where(new_pair, np.arange(len(order)),
                                           0))
    return order[np.arange(len(order)) - start < max_det]


def _fce_eval(fce, gt: BoxTable, dets: Detections, max_dets: int,
              iou_thrs: Optional[Sequence[float]]):
    """faster-coco-eval's COCOeval_faster, evaluated and accumulated."""
    silent = lambda *args, **kwargs: None  # noqa: E731
    gt_coco = fce.COCO(print_function=silent)
    gt_coco.dataset = gt.to_coco()
    gt_coco.createIndex()
    dt_coco = fce.COCO(print_function=silent)
    dt_coco.dataset = dict(images=list(gt_coco.dataset['images']),
                           categories=list(gt_coco.dataset['categories']),
                           annotations=_result_anns(dets))
    dt_coco.createIndex()
    ev = fce.COCOeval_faster(gt_coco, dt_coco, 'bbox',
                             print_function=silent)
    _set_params(ev.params, max_dets, iou_thrs)
    ev.evaluate()
    ev.accumulate()
    return ev


def _fce_matched_at(ev, iou_thr: float) -> dict:
    """``{"dtId_gtId": iou}`` of faster-coco-eval at one IoU threshold.

    ``eval['matched']`` pools the matches of every threshold evaluated, so
    with several thresholds the compiled evaluation runs once more at
    ``iou_thr`` alone, on the IoUs and datasets ``ev`` already prepared
    (preparing them is most of its time).
    """
    from mmext.compat import cocoeval_params, fce_evaluate_accumulate
    p = cocoeval_params(ev)
    if len(p.iouThrs) == 1:
        return ev.eval['matched']
    one = copy.deepcopy(p)
    one.iouThrs = np.asarray([iou_thr], dtype=np.float64)
    cat_ids = p.catIds if p.useCats else [-1]
    ious = [[ev.ious[i, c] for c in cat_ids] for i in p.imgIds]
    return fce_evaluate_accumulate()(
        one, ious, ev.gt_dataset, ev.dt_dataset, p.imgIds, p.catIds,
        bool(p.useCats))['matched']


def _match_table_from_pairs(matched: dict, gt: BoxTable, dets: Detections,
                            iou_thr: float, max_det: int) -> MatchTable:
    """A :class:`MatchTable` from ``"dtId_gtId"`` pairs (crowd included)."""
    det_gt = np.zeros(len(dets), dtype=np.int64)
    if matched:
        pairs = np.char.partition(np.array(list(matched)), '_')
        det_gt[pairs[:, 0].astype(np.int64) - 1] = pairs[:, 2].astype(
            np.int64)
    rows = _evaluated_rows(dets, max_det)
    det_gt = det_gt[rows]
    # a detection on a crowd box is ignored, as COCOeval's dtIgnore
    ignored = (det_gt > 0) & gt.ignore[np.maximum(det_gt, 1) - 1]
    return _match_table(float(iou_thr), rows, det_gt, ignored, gt, dets)


def _match_table(iou_thr: float, rows: np.ndarray, det_gt: np.ndarray,
                 ignored: np.ndarray, gt: BoxTable,
                 dets: Detections) -> MatchTable:
    """A :class:`MatchTable` of the detections at ``rows`` (their matched
    GT id, 0 = none, and COCO's ignore flag) against every GT box."""
    return MatchTable(
        iou_thr=iou_thr,
        det_id=rows + 1,
        det_image=dets.image_id[rows],
        det_label=dets.label[rows],
        det_score=dets.score[rows],
        det_tp=(det_gt > 0) & ~ignored,
        det_ignored=ignored,
        det_gt=det_gt,
        gt_id=np.arange(1, len(gt) + 1, dtype=np.int64),
        gt_image=gt.image_id.copy(),
        gt_label=gt.label.copy(),
        gt_ignored=gt.ignore.copy())


def evaluate_boxes(gt: BoxTable,
                   dets: Detections,
                   match_iou: float,
                   max_dets: int = COCO_MAX_DETS,
                   iou_thrs: Optional[Sequence[float]] = None,
                   backend: str = 'auto') -> Tuple[object, MatchTable]:
    """One COCO evaluation (the 'all' area range) and its matches.

    Args:
        gt: Ground truth.
        dets: Detections aligned with ``gt``.
        match_iou: The IoU threshold the returned matches are read at, one
            of ``iou_thrs``.
        max_dets: Detections per image and class to match (AP is still
            read at COCO's 100, see :func:`run_cocoeval`).
        iou_thrs: IoU thresholds; default COCO's 0.50:0.05:0.95.
        backend: One of :data:`BACKENDS`.

    Returns:
        ``(ev, matches)``: ``ev`` is an accumulated COCOeval of either
        library (``params`` and ``eval['precision']`` as pycocotools, for
        :func:`ap_per_class` / :func:`mean_ap`); ``matches`` a
        :class:`MatchTable` at ``match_iou``.

    Raises:
        MMExtError: see :func:`resolve_backend`.
        ValueError: ``match_iou`` is not one of the IoU thresholds.
    """
    # one dict per box and detection: the collector would walk them again
    # and again (a third of the sweep's time at 200k detections)
    with gc_paused():
        return _evaluate_boxes(gt, dets, match_iou, max_dets, iou_thrs,
                               backend)


def _evaluate_boxes(gt: BoxTable, dets: Detections, match_iou: float,
                    max_dets: int, iou_thrs: Optional[Sequence[float]],
                    backend: str) -> Tuple[object, MatchTable]:
    if resolve_backend(backend) == 'pycocotools':
        gt_coco = coco_from_table(gt)
        ev = run_cocoeval(gt_coco, coco_from_detections(gt_coco, dets),
                          max_dets=max_dets, iou_thrs=iou_thrs)
        return ev, match_table(ev, gt, dets, match_iou)
    ev = _fce_eval(_faster_coco_eval(), gt, dets, max_dets, iou_thrs)
    thrs = np.asarray(ev.params.iouThrs)
    t = int(np.argmin(np.abs(thrs - match_iou)))
    if abs(thrs[t] - match_iou) > 1e-9:
        raise ValueError(f'iou_thr {match_iou} is not one of {list(thrs)}')
    matched = _fce_matched_at(ev, float(thrs[t]))
    return ev, _match_table_from_pairs(matched, gt, dets, thrs[t],
                                       ev.params.maxDets[-1])
