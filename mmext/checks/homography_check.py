"""Do boxes and images follow the homography mmdet recorded for them?

mmdet's geometric transforms (Resize, RandomFlip, Rotate, Shear, Translate)
multiply a 3x3 ``homography_matrix`` into the results; Soft Teacher maps
teacher pseudo boxes into the student view with ``H_student @ inv(H_teacher)``.
A transform that moves the image but records the wrong matrix (or moves the
boxes differently) gives pseudo boxes beside their objects: the "clustered
predictions" failure. These functions measure that disagreement.

For an affine matrix the centre of the bounding box of a transformed
rectangle is the transformed centre of the rectangle, whatever the rotation or
shear, so box centres can be compared exactly; whole boxes only when the
matrix keeps axes (scale, flip, translation).
"""
from typing import Dict, Tuple

import cv2
import numpy as np


def project_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) pixel points."""
    pts = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ matrix.T
    return pts[:, :2] / pts[:, 2:3]


def project_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Bounding boxes of (N, 4) xyxy boxes mapped by a homography (as mmdet)."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4)
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([x1, y1, x2, y1, x1, y2, x2, y2], axis=1).reshape(-1, 2)
    pts = project_points(corners, matrix).reshape(-1, 4, 2)
    return np.concatenate([pts.min(1), pts.max(1)], axis=1)


def keeps_axes(matrix: np.ndarray, eps: float = 1e-6) -> bool:
    """True for scale/flip/translation (boxes map to boxes exactly)."""
    m = matrix / matrix[2, 2]
    return abs(m[0, 1]) + abs(m[1, 0]) + abs(m[2, 0]) + abs(m[2, 1]) < eps


def box_errors(ref_boxes: np.ndarray, ref_labels: np.ndarray, boxes: np.ndarray,
               labels: np.ndarray, matrix: np.ndarray,
               img_hw: Tuple[int, int], border_px: float = 1.0) -> np.ndarray:
    """Distance of each box from the reference box the matrix says it is.

    Each box is matched to the reference box of its class whose mapped centre
    is nearest (filtering transforms drop boxes, so indices do not survive).
    Boxes inside the image that touch its border were clipped and are not
    measured; boxes outside the image are.

    Args:
        ref_boxes: (M, 4) xyxy boxes before the transforms, pixels.
        ref_labels: (M,) their labels.
        boxes: (N, 4) xyxy boxes after the transforms, pixels.
        labels: (N,) their labels.
        matrix: Homography from the reference frame to the output frame.
        img_hw: Output image (height, width), pixels.
        border_px: Boxes this close to the border count as clipped.

    Returns:
        (K,) errors in output pixels for the K measured boxes: centre
        distance, or for axis-keeping matrices the largest corner difference;
        ``inf`` for a box with no reference box of its class.
    """
    h, w = img_hw
    mapped = project_boxes(ref_boxes, matrix)
    ref_c = (mapped[:, :2] + mapped[:, 2:]) / 2
    whole = keeps_axes(matrix)
    errors = []
    for box, label in zip(boxes, labels):
        inside = (box[0] >= -border_px and box[1] >= -border_px
                  and box[2] <= w + border_px and box[3] <= h + border_px)
        touches = (box[0] <= border_px or box[1] <= border_px
                   or box[2] >= w - border_px or box[3] >= h - border_px)
        if inside and touches:  # clipped by the transform: centre moved
            continue
        same = np.flatnonzero(ref_labels == label)
        if len(same) == 0:
            errors.append(np.inf)
            continue
        dist = np.linalg.norm(ref_c[same] - (box[:2] + box[2:]) / 2, axis=1)
        k = same[int(np.argmin(dist))]
        err = float(dist.min())
        if whole:
            err = max(err, float(np.abs(mapped[k] - box).max()))
        errors.append(err)
    return np.asarray(errors, dtype=np.float64)


def _edges(grey: np.ndarray) -> np.ndarray:
    # Gradient magnitude: unchanged in sign by Solarize/Invert and in shape
    # by contrast, brightness and equalisation, unlike raw intensities.
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def _grey_small(img: np.ndarray, max_side: int) -> Tuple[np.ndarray, float]:
    img = np.asarray(img, dtype=np.float32)
    grey = img.mean(axis=2) if img.ndim == 3 else img
    scale = min(1.0, max_side / max(grey.shape))
    small = cv2.resize(grey, None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA) if scale < 1 else grey
    return np.ascontiguousarray(small), scale


def image_agreement(src: np.ndarray, dst: np.ndarray, matrix: np.ndarray,
                    max_side: int = 96) -> float:
    """Correlation of ``dst`` with ``src`` warped by ``matrix`` (edges).

    Args:
        src: Source image (H, W[, C]).
        dst: Destination image (H', W'[, C]).
        matrix: Homography from src pixels to dst pixels.
        max_side: Both images are shrunk to this many pixels on their long
            side first (speed; the check is about placement, not detail).

    Returns:
        Pearson correlation of the two edge maps over the pixels the warped
        source covers, in [-1, 1]; 0 when too few pixels overlap.
    """
    s_src, f_src = _grey_small(src, max_side)
    s_dst, f_dst = _grey_small(dst, max_side)
    m = np.diag([f_dst, f_dst, 1.0]) @ matrix @ np.diag([1 / f_src, 1 / f_src, 1.0])
    size = (s_dst.shape[1], s_dst.shape[0])
    warped = cv2.warpPerspective(_edges(s_src), m, size, flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones_like(s_src), m, size, flags=cv2.INTER_NEAREST)
    cover = cv2.erode(cover, np.ones((5, 5), np.uint8)) > 0.5
    if cover.sum() < 64:
        return 0.0
    a, b = warped[cover], _edges(s_dst)[cover]
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def alternative_matrices(matrix: np.ndarray, src_hw: Tuple[int, int],
                         dst_hw: Tuple[int, int]) -> Dict[str, np.ndarray]:
    """Likely wrong matrices near the recorded one.

    A transform that flips the image without recording it (or records a flip
    it did not do) is off by one flip of the output; one that records a
    geometric change it did not make leaves the image a plain resize.

    Args:
        matrix: The recorded homography, src -> dst pixels.
        src_hw: Source image (height, width).
        dst_hw: Destination image (height, width).
    """
    h, w = dst_hw
    hflip = np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    vflip = np.array([[1, 0, 0], [0, -1, h], [0, 0, 1]], dtype=np.float64)
    resize = np.diag([w / src_hw[1], h / src_hw[0], 1.0])
    return {'an extra horizontal flip': hflip @ matrix,
            'an extra vertical flip': vflip @ matrix,
            'a plain resize': resize}


def image_mismatch(src: np.ndarray, dst: np.ndarray, matrix: np.ndarray,
                   margin: float = 0.1, min_agreement: float = 0.3) -> str:
    """Why ``dst`` does not look like ``src`` moved by ``matrix`` ('' if it does).

    The recorded matrix is compared with :func:`alternative_matrices`: it is
    wrong when an alternative explains ``dst`` clearly better (by ``margin``
    in edge correlation, and at least ``min_agreement``). Texture without
    structure (no alternative reaches ``min_agreement``) is no evidence.

    Args:
        src: Source image.
        dst: Destination image.
        matrix: Recorded homography src -> dst.
        margin: Correlation an alternative must win by.
        min_agreement: Correlation an alternative must reach.
    """
    recorded = image_agreement(src, dst, matrix)
    for name, alt in alternative_matrices(matrix, src.shape[:2],
                                          dst.shape[:2]).items():
        score = image_agreement(src, dst, alt)
        if score >= min_agreement and score > recorded + margin:
            return (f'image fits {name} (edge correlation {score:.2f}) better '
                    f'than the recorded matrix ({recorded:.2f})')
    return ''
