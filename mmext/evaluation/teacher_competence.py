"""Teacher competence from predictions on the labeled validation set.

The record of :mod:`mmext.runs.teacher_competence`, computed with the
threshold sweep's COCO matching (:func:`~.threshold_sweep.sweep_thresholds`,
IoU 0.5) on a fine grid of score thresholds. Used by
:class:`~mmext.hooks.TeacherCompetenceHook` at every validation and by
``tools/investigate.py`` on ``tools/test.py --out`` predictions.
"""
from typing import Optional

import numpy as np

from mmext.data import BoxTable
from mmext.runs.teacher_competence import competence_record
from mmext.evaluation.predictions import Detections
from mmext.evaluation.threshold_sweep import ALL_CLASSES, SweepResult, sweep_thresholds

#: Step of the score-threshold grid of a competence record.
COMPETENCE_STEP = 0.01


def competence_grid(step: float = COMPETENCE_STEP) -> np.ndarray:
    """0, step, ..., 1 (rounded to 6 decimals)."""
    n = int(round(1.0 / step))
    return np.round(np.linspace(0.0, n * step, n + 1), 6)


def record_from_sweep(result: SweepResult, num_images: int,
                      iteration: Optional[int] = None,
                      model: str = 'teacher') -> dict:
    """A competence record from a sweep's per-class TP/FP curves."""
    curves = [c for c in result.curves if c.name != ALL_CLASSES]
    return competence_record(
        [c.name for c in curves], result.thresholds,
        {c.name: c.tp for c in curves}, {c.name: c.fp for c in curves},
        {c.name: c.num_gt for c in curves}, iteration, model,
        result.iou_thr, num_images)


def competence_from_predictions(gt: BoxTable, dets: Detections,
                                iteration: Optional[int] = None,
                                model: str = 'teacher',
                                iou_thr: float = 0.5,
                                step: float = COMPETENCE_STEP,
                                backend: str = 'auto') -> dict:
    """Per-class precision/recall at every threshold of a 0..1 grid.

    Args:
        gt: Validation ground truth.
        dets: The model's detections on it.
        iteration: Training iteration the model is from, if known.
        model: ``'teacher'``, ``'student'`` or ``'model'``.
        iou_thr: IoU of a match.
        step: Grid step of the thresholds.
        backend: COCO matching backend (see :func:`sweep_thresholds`).
    """
    result = sweep_thresholds(gt, dets, competence_grid(step), iou_thr,
                              backend)
    return record_from_sweep(result, len(gt.image_ids), iteration, model)
