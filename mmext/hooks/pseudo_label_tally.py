"""Counting pseudo labels: per stage, per class, with score histograms and TP.

A :class:`PseudoLabelTally` is a set of named numpy arrays that only ever get
summed, so tallies of several iterations, several processes (one flat vector,
``all_reduce`` sum) and a checkpoint (the same vector as a list) merge
exactly. :func:`tally_image` adds the pseudo boxes of one unlabeled image;
matching against ground truth uses mmdet's own VOC-style matcher
(:func:`mmdet.evaluation.functional.tpfp_default`, IoU >= ``iou_thr``, same
class, greedy by score, a box on an ignored (crowd/difficult) GT is neither
TP nor FP).

Score histograms have ``num_bins`` equal bins on [0, 1]; bin ``k`` holds
scores in ``[k / num_bins, (k + 1) / num_bins)`` (a score of 1.0 goes to the
last bin).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.evaluation.functional.mean_ap import tpfp_default

#: Stage names in filter order. ``raw``: the teacher's detections (after its
#: test_cfg NMS/score_thr); ``initial``: after pseudo_label_initial_score_thr;
#: ``rpn``/``cls``: score > rpn_pseudo_thr/cls_pseudo_thr; ``reg``: box-jitter
#: uncertainty < reg_pseudo_thr.
ALL_STAGES = ('raw', 'initial', 'rpn', 'cls', 'reg')

#: Arrays of a tally: name -> shape as a function of (S stages, C classes,
#: B bins). Order matters: it is the layout of :meth:`to_vector`.
_LAYOUT = (
    ('num_images', lambda s, c, b: ()),
    ('images_without', lambda s, c, b: (s, )),
    ('counts', lambda s, c, b: (s, c)),
    ('score_sum', lambda s, c, b: (s, c)),
    ('hist', lambda s, c, b: (s, c, b)),
    ('tp', lambda s, c, b: (s, c)),
    ('fp', lambda s, c, b: (s, c)),
    ('num_gt', lambda s, c, b: (c, )),
    ('gt_images', lambda s, c, b: ()),
    ('raw_tp_hist', lambda s, c, b: (c, b)),
    ('raw_fp_hist', lambda s, c, b: (c, b)),
    ('student_in', lambda s, c, b: ()),
    ('student_kept', lambda s, c, b: ()),
)


class PseudoLabelTally:
    """Summable pseudo-label statistics of some unlabeled images.

    Args:
        stages: Stage names, a subsequence of :data:`ALL_STAGES` starting with
            ``'raw'``.
        num_classes: Number of classes.
        num_bins: Score histogram bins on [0, 1].

    Attributes:
        arrays: ``name -> np.ndarray`` (float64): ``num_images`` (unlabeled
            images seen), ``images_without[stage]`` (images left with no
            box), ``counts[stage, class]``, ``score_sum[stage, class]``,
            ``hist[stage, class, bin]``, ``tp``/``fp[stage, class]`` (only on
            images with ground truth), ``num_gt[class]`` (non-ignored GT boxes
            of those images), ``gt_images``, ``raw_tp_hist``/``raw_fp_hist
            [class, bin]`` (raw boxes by score bin and match), ``student_in``/
            ``student_kept`` (boxes before/after the student view's
            ``min_pseudo_bbox_wh`` filter).
    """

    def __init__(self, stages: Sequence[str], num_classes: int,
                 num_bins: int = 100) -> None:
        self.stages = tuple(stages)
        self.num_classes = int(num_classes)
        self.num_bins = int(num_bins)
        dims = (len(self.stages), self.num_classes, self.num_bins)
        self.arrays: Dict[str, np.ndarray] = {
            name: np.zeros(shape(*dims)) for name, shape in _LAYOUT
        }

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __setitem__(self, name: str, value) -> None:
        # ``tally['num_images'] += 1`` on a 0-d array assigns back here.
        self.arrays[name][...] = value

    @property
    def size(self) -> int:
        """Length of :meth:`to_vector`."""
        return sum(a.size for a in self.arrays.values())

    def empty_like(self) -> 'PseudoLabelTally':
        """A zero tally with the same stages, classes and bins."""
        return PseudoLabelTally(self.stages, self.num_classes, self.num_bins)

    def reset(self) -> None:
        """Set every array to zero."""
        for a in self.arrays.values():
            a[...] = 0

    def add(self, other: 'PseudoLabelTally') -> None:
        """Add ``other`` (same layout) into this tally."""
        for name, a in self.arrays.items():
            a += other.arrays[name]

    def to_vector(self) -> np.ndarray:
        """All arrays flattened into one float64 vector (fixed order)."""
        return np.concatenate([self.arrays[n].ravel() for n, _ in _LAYOUT])

    def load_vector(self, vector: Sequence[float]) -> None:
        """Replace the arrays by the values of a :meth:`to_vector` vector.

        Raises:
            ValueError: ``vector`` has the wrong length.
        """
        vector = np.asarray(vector, dtype=np.float64)
        if vector.size != self.size:
            raise ValueError(f'tally vector of length {vector.size}, '
                             f'expected {self.size}')
        start = 0
        for name, _ in _LAYOUT:
            a = self.arrays[name]
            a[...] = vector[start:start + a.size].reshape(a.shape)
            start += a.size

    def score_bins(self, scores: np.ndarray) -> np.ndarray:
        """Histogram bin index of each score (clipped into [0, B-1])."""
        idx = np.floor(np.asarray(scores, np.float64) * self.num_bins)
        return np.clip(idx, 0, self.num_bins - 1).astype(np.int64)


def _match(bboxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
           gt: 'ImageGT', num_classes: int,
           iou_thr: float) -> Tuple[np.ndarray, np.ndarray]:
    """TP and FP flags of each box (mmdet's VOC matcher, per class)."""
    tp = np.zeros(len(scores), bool)
    fp = np.zeros(len(scores), bool)
    for c in np.unique(labels):
        sel = np.flatnonzero(labels == c)
        dets = np.hstack([bboxes[sel], scores[sel, None]]).astype(np.float32)
        gt_c = gt.bboxes[(gt.labels == c) & ~gt.ignore]
        ign_c = gt.bboxes[(gt.labels == c) & gt.ignore]
        t, f = tpfp_default(dets, gt_c, ign_c, iou_thr=iou_thr)
        tp[sel] = t[0] > 0
        fp[sel] = f[0] > 0
    return tp, fp


class ImageGT:
    """Ground-truth boxes of one image (original image pixels, xyxy).

    Args:
        bboxes: (n, 4) boxes.
        labels: (n,) 0-based class indices.
        ignore: (n,) True for crowd/difficult boxes.
    """

    def __init__(self, bboxes: np.ndarray, labels: np.ndarray,
                 ignore: np.ndarray) -> None:
        self.bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
        self.labels = np.asarray(labels, np.int64)
        self.ignore = np.asarray(ignore, bool)


def tally_image(tally: PseudoLabelTally,
                stage_boxes: Dict[str, Tuple[np.ndarray, np.ndarray,
                                             np.ndarray]],
                gt: Optional[ImageGT] = None,
                iou_thr: float = 0.5) -> None:
    """Add the pseudo boxes of one unlabeled image, stage by stage.

    Args:
        tally: Tally to add to.
        stage_boxes: ``stage -> (bboxes (n, 4) in original image pixels,
            scores (n,), labels (n,))`` for every stage of ``tally``.
        gt: Ground truth of the image, or None (no precision/recall).
        iou_thr: IoU at which a pseudo box matches a GT box.
    """
    C = tally.num_classes
    tally['num_images'] += 1
    if gt is not None:
        tally['gt_images'] += 1
        tally['num_gt'] += np.bincount(gt.labels[~gt.ignore], minlength=C)[:C]
    for s, stage in enumerate(tally.stages):
        bboxes, scores, labels = stage_boxes[stage]
        labels = np.asarray(labels, np.int64)
        scores = np.asarray(scores, np.float64)
        if len(labels) == 0:
            tally['images_without'][s] += 1
            continue
        bins = tally.score_bins(scores)
        tally['counts'][s] += np.bincount(labels, minlength=C)[:C]
        tally['score_sum'][s] += np.bincount(
            labels, weights=scores, minlength=C)[:C]
        np.add.at(tally['hist'][s], (labels, bins), 1)
        if gt is None:
            continue
        tp, fp = _match(np.asarray(bboxes), scores, labels, gt, C, iou_thr)
        tally['tp'][s] += np.bincount(labels[tp], minlength=C)[:C]
        tally['fp'][s] += np.bincount(labels[fp], minlength=C)[:C]
        if stage == 'raw':
            np.add.at(tally['raw_tp_hist'], (labels[tp], bins[tp]), 1)
            np.add.at(tally['raw_fp_hist'], (labels[fp], bins[fp]), 1)


def stage_boxes_of_image(raw: Tuple[np.ndarray, np.ndarray, np.ndarray],
                         kept: Tuple[np.ndarray, np.ndarray, np.ndarray],
                         reg_uncs: Optional[np.ndarray],
                         stages: Sequence[str],
                         thresholds: Dict[str, float]) -> Dict[str, tuple]:
    """Split one image's pseudo boxes into the stages of Soft Teacher.

    ``raw`` and ``initial`` are observed (the teacher's detections and what
    ``get_pseudo_instances`` returned); the training stages are the returned
    boxes filtered as mmdet does: ``score > rpn_pseudo_thr``, ``score >
    cls_pseudo_thr``, ``reg_uncs < reg_pseudo_thr``.

    Args:
        raw: (bboxes, scores, labels) of the teacher's detections.
        kept: (bboxes, scores, labels) returned by get_pseudo_instances.
        reg_uncs: (n,) box-jitter uncertainty of ``kept`` or None.
        stages: Stages to produce.
        thresholds: ``'rpn'``, ``'cls'``, ``'reg'`` -> threshold; ``rpn``
            and ``cls`` may be per-class lists (compared in the scores'
            dtype, as the model's torch filter does).

    Returns:
        ``stage -> (bboxes, scores, labels)``.
    """
    out = {'raw': raw, 'initial': kept}
    bboxes, scores, labels = kept
    masks = {}
    for stage in ('rpn', 'cls'):
        if stage in stages:
            masks[stage] = scores > _class_thresholds(thresholds[stage],
                                                      scores, labels)
    if 'reg' in stages:
        if reg_uncs is None:
            masks['reg'] = np.ones(len(scores), bool)
        elif len(scores) == 0:
            # Soft Teacher returns (0, 4) uncertainties for an empty image.
            masks['reg'] = np.zeros(0, bool)
        else:
            masks['reg'] = np.asarray(reg_uncs).reshape(-1) < thresholds['reg']
    for stage, m in masks.items():
        out[stage] = (bboxes[m], scores[m], labels[m])
    return out


def _class_thresholds(thr, scores: np.ndarray, labels: np.ndarray):
    """A scalar threshold, or each box's class threshold for a list."""
    if np.ndim(thr) == 0:
        return thr
    values = np.asarray(thr, dtype=np.asarray(scores).dtype)
    return values[np.asarray(labels, np.int64)]


def stages_for(semi_train_cfg: dict, has_roi_head: bool) -> List[str]:
    """Stages measured for a model: those whose threshold the config sets."""
    stages = ['raw', 'initial']
    for stage, key in (('rpn', 'rpn_pseudo_thr'), ('cls', 'cls_pseudo_thr'),
                       ('reg', 'reg_pseudo_thr')):
        if semi_train_cfg.get(key) is not None and (stage == 'cls'
                                                    or has_roi_head):
            stages.append(stage)
    return stages
