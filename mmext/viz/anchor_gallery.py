"""GT boxes without a positive RPN anchor, drawn with their best anchor.

``tools/anchor_fit.py`` counts, per class, the GT boxes no anchor reaches
at the assigner's positive IoU (:func:`mmext.anchors.coverage.
anchor_coverage`, ``n_pos_iou == 0``). This draws them: per class the
``k`` boxes with the lowest best-anchor IoU (the farthest from any
positive), on the original image, with the best anchor of the training
scale mapped back to it (GT green, anchor blue), captioned with the file,
the box size at training scale, the best IoU and the anchor's level and
shape.
"""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from mmext.anchors.anchor_spec import AnchorSpec
from mmext.anchors.coverage import Coverage
from mmext.anchors.train_scale import ScaledBoxes
from mmext.data import BoxTable

from .error_gallery import (GT_COLOUR, blank_tile, draw_tile, read_image,
                            row_image)

ANCHOR_COLOUR = '#2166ac'
#: Grid points searched around the box centre for the best anchor, per side.
SEARCH = 3


@dataclass
class AnchorMiss:
    """One GT box without a positive anchor.

    Attributes:
        row: Row of the box in the table (and in ``boxes``).
        max_iou: Its best IoU with any anchor (training scale).
        anchor: The best anchor, xyxy pixels of the original image.
        level: Its pyramid level; ``anchor_wh``: its size at training scale.
    """
    row: int
    max_iou: float
    anchor: tuple
    level: int
    anchor_wh: tuple


def _iou_many(box: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], anchors[:, 0])
    y1 = np.maximum(box[1], anchors[:, 1])
    x2 = np.minimum(box[2], anchors[:, 2])
    y2 = np.minimum(box[3], anchors[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    return inter / (area + areas - inter)


def best_anchor(box: np.ndarray, level: int, base: int, spec: AnchorSpec,
                pad_w: int, pad_h: int,
                base_anchors: Optional[List[np.ndarray]] = None
                ) -> tuple:
    """The anchor of base ``base`` at ``level`` with the highest IoU with
    ``box`` (training-scale xyxy), over the grid points near its centre.

    Returns:
        ``(anchor xyxy, IoU)`` at training scale.
    """
    bases = base_anchors or spec.base_anchors()
    stride_w, stride_h = spec.strides[level]
    shape = bases[level][base]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    # mmdet's grid: feature size ceil(pad / stride), anchor = base + shift
    n_w, n_h = int(np.ceil(pad_w / stride_w)), int(np.ceil(pad_h / stride_h))
    base_cx, base_cy = (shape[0] + shape[2]) / 2, (shape[1] + shape[3]) / 2
    js = np.arange(-SEARCH, SEARCH + 1) + int(round((cx - base_cx) / stride_w))
    iy = np.arange(-SEARCH, SEARCH + 1) + int(round((cy - base_cy) / stride_h))
    js, iy = js[(js >= 0) & (js < n_w)], iy[(iy >= 0) & (iy < n_h)]
    jj, ii = np.meshgrid(js, iy)
    shifts = np.stack([jj.ravel() * stride_w, ii.ravel() * stride_h] * 2, 1)
    anchors = shape[None, :] + shifts
    iou = _iou_many(box, anchors)
    best = int(np.argmax(iou))
    return tuple(float(v) for v in anchors[best]), float(iou[best])


def anchor_misses(table: BoxTable, boxes: ScaledBoxes, spec: AnchorSpec,
                  coverage: Coverage, k: int = 8
                  ) -> Dict[str, List[AnchorMiss]]:
    """Per class the ``k`` boxes without a positive anchor (``n_pos_iou ==
    0``), lowest best IoU first, with their best anchor.

    Args:
        table: The boxes (original pixels); ``boxes``: the same rows at
            training scale; ``coverage``: :func:`anchor_coverage` of them.
        k: Boxes per class.
    """
    bases = spec.base_anchors()
    out: Dict[str, List[AnchorMiss]] = {}
    rows = np.flatnonzero((coverage.n_pos_iou == 0) & ~table.ignore)
    for r in rows[np.argsort(coverage.max_iou[rows], kind='stable')]:
        name = table.class_names[table.label[r]]
        misses = out.setdefault(name, [])
        if len(misses) >= k:
            continue
        level, base = int(coverage.best_level[r]), int(coverage.best_base[r])
        anchor, iou = best_anchor(boxes.bboxes[r], level, base, spec,
                                  int(boxes.pad_w[r]), int(boxes.pad_h[r]),
                                  bases)
        n = int(boxes.image_index[r])
        sx = boxes.img_w[r] / table.widths[n]
        sy = boxes.img_h[r] / table.heights[n]
        misses.append(AnchorMiss(
            int(r), float(coverage.max_iou[r]),
            (anchor[0] / sx, anchor[1] / sy, anchor[2] / sx, anchor[3] / sy),
            level, (anchor[2] - anchor[0], anchor[3] - anchor[1])))
    return out


def write_anchor_gallery(table: BoxTable, boxes: ScaledBoxes,
                         spec: AnchorSpec, coverage: Coverage, img_dir: str,
                         out_dir: str, k: int = 8) -> dict:
    """Draw :func:`anchor_misses` as ``<class>_no_positive_anchor.png``.

    Returns:
        ``{'images': [png paths], 'cases': n, 'unreadable': [files]}``.
    """
    import cv2
    os.makedirs(out_dir, exist_ok=True)
    written, unreadable, total = [], [], 0
    for name, misses in anchor_misses(table, boxes, spec, coverage,
                                      k).items():
        tiles = []
        for miss in misses:
            r = miss.row
            n = int(boxes.image_index[r])
            path = os.path.join(img_dir, table.file_names[n])
            image = read_image(path)
            if image is None:
                unreadable.append(path)
                tiles.append(blank_tile('unreadable image'))
                continue
            bw = boxes.bboxes[r, 2] - boxes.bboxes[r, 0]
            bh = boxes.bboxes[r, 3] - boxes.bboxes[r, 1]
            tiles.append(draw_tile(image, [
                ((table.x1[r], table.y1[r], table.x2[r], table.y2[r]),
                 GT_COLOUR), (miss.anchor, ANCHOR_COLOUR)], [
                os.path.basename(table.file_names[n]),
                f'{name} | {bw:.0f}x{bh:.0f} px at train scale',
                f'best IoU {miss.max_iou:.2f} | anchor stride '
                f'{spec.strides[miss.level][0]:g} '
                f'{miss.anchor_wh[0]:.0f}x{miss.anchor_wh[1]:.0f}']))
        safe = ''.join(c if c.isalnum() or c in '-_' else '_' for c in name)
        out = os.path.join(out_dir, f'{safe}_no_positive_anchor.png')
        cv2.imwrite(out, row_image(tiles))
        written.append(out)
        total += len(misses)
    return dict(images=written, cases=total,
                unreadable=sorted(set(unreadable)))
