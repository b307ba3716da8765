"""Do the predictions belong to these images? A test against chance.

Predictions of another dataset are refused by image id and file name
(:func:`mmext.evaluation.predictions.load_detections`). A COCO results file
has no file names, though, and small integer ids overlap by chance: the
detections of image 7 of dataset A are then scored against image 7 of
dataset B, and a plausible table comes out. Where the file names cannot
tell, the boxes can: a model's best box on an image overlaps that image's
objects more often than another image's. Detections that fit their own
images no better than images shuffled among themselves are not
predictions of these images.
"""
from typing import Dict, Tuple

import numpy as np

#: Fewer images than this: too few to tell the pairing from chance.
MIN_IMAGES = 10
#: Standard errors the own pairing must fit better than the shuffled one.
MIN_T = 2.0
#: ... or fit them better by at least this mean best-box IoU.
MIN_GAIN = 0.05
#: Image shifts averaged for the shuffled pairing.
SHIFTS = (1, 2, 3, 5, 8)


def _best_boxes(image_id: np.ndarray, score: np.ndarray,
                boxes: np.ndarray) -> Dict[int, np.ndarray]:
    """The highest-scored box of every image."""
    order = np.lexsort((-score, image_id))
    first = np.ones(len(order), dtype=bool)
    first[1:] = image_id[order][1:] != image_id[order][:-1]
    return {int(image_id[i]): boxes[i] for i in order[first]}


def _max_iou(box: np.ndarray, others: np.ndarray) -> float:
    """Largest IoU of one xyxy box with rows of xyxy boxes (0 if none)."""
    if not len(others):
        return 0.0
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return float(np.max(inter / np.maximum(area + areas - inter, 1e-12)))


def pairing_agreement(det_image: np.ndarray, det_score: np.ndarray,
                      det_boxes: np.ndarray, gt_image: np.ndarray,
                      gt_boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Best-box IoU with the own image's objects, and with other images'.

    Args:
        det_image, det_score: Image id and score per detection.
        det_boxes: (N, 4) xyxy detections.
        gt_image: Image id per ground-truth box.
        gt_boxes: (M, 4) xyxy ground-truth boxes (class-agnostic).

    Returns:
        ``(own, shuffled)``, one value per image with both detections and
        ground truth: the largest IoU between the image's best detection
        and its own ground truth; the same against the ground truth of the
        image ``k`` places further in id order, averaged over :data:`SHIFTS`.
    """
    best = _best_boxes(det_image, det_score, det_boxes)
    by_image = {int(i): gt_boxes[gt_image == i] for i in np.unique(gt_image)}
    ids = sorted(set(best) & set(by_image))
    shifts = [s for s in SHIFTS if s % max(len(ids), 1)]
    own = np.array([_max_iou(best[i], by_image[i]) for i in ids])
    shuffled = np.array([
        np.mean([_max_iou(best[i], by_image[ids[(k + s) % len(ids)]])
                 for s in shifts]) if shifts else 0.0
        for k, i in enumerate(ids)])
    return own, shuffled


def fits_no_better_than_chance(det_image, det_score, det_boxes, gt_image,
                               gt_boxes) -> Tuple[bool, float, float]:
    """True when there are enough images and the detections do not fit their
    own images' objects significantly better than other images'.

    The per-image differences ``own - shuffled`` are tested one-sided: the
    pairing is refused when their mean is less than :data:`MIN_T` standard
    errors above 0 and less than :data:`MIN_GAIN` (a trained model is far
    from both: the demo's 0.68 against 0.07 over 80 images; another
    dataset's boxes gave 0.05 against 0.07).

    Returns:
        ``(verdict, own mean, shuffled mean)`` (see
        :func:`pairing_agreement`).
    """
    own, shuffled = pairing_agreement(det_image, det_score, det_boxes,
                                      gt_image, gt_boxes)
    if len(own) < MIN_IMAGES:
        return False, float(np.mean(own)) if len(own) else 0.0, 0.0
    diff = own - shuffled
    spread = diff.std(ddof=1) / np.sqrt(len(diff))
    t = diff.mean() / spread if spread > 0 else (np.inf if diff.mean() > 0
                                                 else -np.inf)
    # both: not significantly better, and not much better either (a weak
    # model on few images can miss the first and still fit its images)
    unrelated = t < MIN_T and diff.mean() < MIN_GAIN
    return bool(unrelated), float(own.mean()), float(shuffled.mean())
