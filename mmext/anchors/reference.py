"""The slow, obviously-correct baseline: mmdet itself, image by image.

For each image this builds every anchor with mmdet's
``AnchorGenerator.grid_priors`` (featmap size = ceil(padded / stride)), drops
the ones ``anchor_inside_flags`` rejects when ``allowed_border >= 0``, runs
``MaxIoUAssigner.assign`` (whose ``BboxOverlaps2D`` builds the full IoU
matrix) and reads the per-GT numbers off the result. Tests compare
:func:`~mmext.anchors.coverage.anchor_coverage` with it, and the benchmark
measures the speed ratio against it.
"""
from typing import Optional

import numpy as np

from .anchor_spec import AnchorSpec
from .coverage import Coverage
from .train_scale import ScaledBoxes


def mmdet_coverage(boxes: ScaledBoxes, spec: AnchorSpec,
                   dtype: str = 'float64',
                   max_images: Optional[int] = None) -> Coverage:
    """Per-GT coverage computed by mmdet's own classes, image by image.

    Args:
        boxes: GT boxes at training scale.
        spec: Anchors and assigner.
        dtype: ``'float64'`` (bit-comparable with anchor_coverage) or
            ``'float32'`` (what training uses).
        max_images: Stop after this many images (the rest stay zero).

    Returns:
        A :class:`Coverage` (``best_level``/``best_base`` left at zero).
    """
    import torch
    from mmdet.models.task_modules.assigners import MaxIoUAssigner
    from mmdet.models.task_modules.prior_generators import anchor_inside_flags
    from mmengine.structures import InstanceData

    torch_dtype = getattr(torch, dtype)
    gen = spec.build_generator()
    assigner = MaxIoUAssigner(
        pos_iou_thr=spec.pos_iou_thr, neg_iou_thr=min(0.3, spec.pos_iou_thr),
        min_pos_iou=spec.min_pos_iou, match_low_quality=spec.match_low_quality,
        gt_max_assign_all=spec.gt_max_assign_all)
    n = len(boxes.bboxes)
    max_iou = np.zeros(n)
    n_pos = np.zeros(n, dtype=np.int64)
    n_assigned = np.zeros(n, dtype=np.int64)
    images = np.unique(boxes.image_index)
    if max_images is not None:
        images = images[:max_images]
    for img in images:
        rows = np.nonzero(boxes.image_index == img)[0]
        r0 = rows[0]
        sizes = [(int(np.ceil(boxes.pad_h[r0] / sh)), int(np.ceil(boxes.pad_w[r0] / sw)))
                 for sw, sh in spec.strides]
        priors = torch.cat(gen.grid_priors(sizes, dtype=torch_dtype, device='cpu'))
        if spec.allowed_border >= 0:
            inside = anchor_inside_flags(
                priors, torch.ones(len(priors), dtype=torch.bool),
                (int(boxes.img_h[r0]), int(boxes.img_w[r0])), spec.allowed_border)
            priors = priors[inside]
        if len(priors) == 0:
            continue  # mmdet's RPN refuses such an image; nothing is covered
        gt = torch.as_tensor(boxes.bboxes[rows], dtype=torch_dtype)
        result = assigner.assign(
            InstanceData(priors=priors),
            InstanceData(bboxes=gt, labels=torch.zeros(len(rows), dtype=torch.long)))
        overlaps = assigner.iou_calculator(gt, priors)
        max_iou[rows] = overlaps.max(dim=1)[0].double().numpy()
        n_pos[rows] = (overlaps >= spec.pos_iou_thr).sum(dim=1).numpy()
        inds = result.gt_inds.numpy()
        n_assigned[rows] = np.bincount(inds[inds > 0] - 1, minlength=len(rows))
    zeros = np.zeros(n, dtype=np.int64)
    return Coverage(max_iou, n_pos, n_assigned, zeros, zeros.copy())
