"""Per-class score thresholds for deployment, in the forms users deploy with.

``threshold_sweep`` finds each class's best-F1 score threshold on the
validation set; mmdet's test config and Ultralytics' ``conf`` take one
threshold for all classes. These write the per-class table (CSV and JSON)
and apply it to a model's outputs.
"""
import os
from typing import Dict, List, Sequence

import numpy as np

from mmext.utils.tables import write_csv, write_json


def class_threshold_rows(thresholds: Dict[str, float],
                         class_names: Sequence[str]) -> List[dict]:
    """One row per class of ``class_names`` (0-based ``index``, as mmdet's
    labels and Ultralytics' ``cls``); a class without a threshold keeps
    every box (``threshold`` 0)."""
    return [dict(index=k, **{'class': name},
                 threshold=float(thresholds.get(name, 0.0)))
            for k, name in enumerate(class_names)]


def write_class_thresholds(thresholds: Dict[str, float],
                           class_names: Sequence[str], stem: str) -> List[str]:
    """``<stem>.csv`` and ``<stem>.json``: the per-class table.

    Returns:
        The two paths.
    """
    rows = class_threshold_rows(thresholds, class_names)
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    return [write_csv(rows, stem + '.csv', ['index', 'class', 'threshold']),
            write_json(dict(
                rows=rows,
                usage='keep a box when its score >= threshold[its class '
                'index]; run the model at a score threshold no higher than '
                f'{min(r["threshold"] for r in rows):g} (mmdet: '
                'test_cfg.rcnn.score_thr; Ultralytics: conf)'),
                stem + '.json')]


def keep_by_class_threshold(labels: np.ndarray, scores: np.ndarray,
                            thresholds: Sequence[float]) -> np.ndarray:
    """Boolean mask of the boxes to keep: ``score >= thresholds[label]``.

    Args:
        labels: 0-based class index per box (mmdet ``pred_instances.labels``
            or Ultralytics ``boxes.cls``).
        scores: Score per box (``pred_instances.scores`` / ``boxes.conf``).
        thresholds: One threshold per class index.
    """
    table = np.asarray(thresholds, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    return np.asarray(scores, dtype=np.float64) >= table[labels]
