"""Read evaluation results: tools/test.py's metrics JSON or a work_dir's log.

mmengine writes every validation to ``<work_dir>/<timestamp>/vis_data/
scalars.json`` (one JSON object per line) and to the text log
``<work_dir>/<timestamp>/<timestamp>.log`` (``Iter(val) ... key: value``).
mmdet's CocoMetric with ``classwise=True`` names per-class AP
``coco/<class>_precision``; Soft Teacher's TeacherStudentValLoop prefixes
every key with ``teacher/`` or ``student/``.
"""
import glob
import math
import os
import re
from typing import Dict, List, Optional, Sequence

from ..utils import MMExtError, load_json, read_jsonl

_PER_CLASS_SUFFIX = '_precision'
_LOG_VAL_LINE = re.compile(r'(?:Iter|Epoch)\(val\)')
_LOG_PAIR = re.compile(r'([\w./-]+): (-?\d+(?:\.\d+)?(?:e-?\d+)?|nan)')


def read_metrics_json(path: str) -> Dict[str, float]:
    """Numeric entries of a metrics JSON (e.g. tools/test.py's)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise MMExtError(f'{path}: expected a JSON object of metrics')
    return {k: _to_float(v) for k, v in data.items()
            if _to_float(v) is not None}


def _to_float(v) -> Optional[float]:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _is_validation(record: Dict[str, float]) -> bool:
    return any(k.endswith(_PER_CLASS_SUFFIX) or '/bbox_mAP' in k
               or k.startswith('coco/') for k in record)


def _scalars_records(work_dir: str) -> List[Dict[str, float]]:
    records = []
    for path in sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data',
                                              'scalars.json'))):
        for rec in read_jsonl(path):
            if _is_validation(rec):
                records.append({k: _to_float(v) for k, v in rec.items()
                                if _to_float(v) is not None})
    return records


def _text_log_records(work_dir: str) -> List[Dict[str, float]]:
    records = []
    for path in sorted(glob.glob(os.path.join(work_dir, '*', '*.log'))):
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if not _LOG_VAL_LINE.search(line):
                    continue
                rec = {k: float(v) for k, v in _LOG_PAIR.findall(line)}
                if _is_validation(rec):
                    records.append(rec)
    return records


def read_work_dir_validations(work_dir: str) -> List[Dict[str, float]]:
    """Every validation a training run logged, oldest first.

    Reads ``vis_data/scalars.json`` of every run in ``work_dir`` (a resumed
    run adds a timestamp folder); falls back to the text logs.

    Raises:
        MMExtError: the folder is missing or holds no validation.
    """
    if not os.path.isdir(work_dir):
        raise MMExtError(f'{work_dir}: no such work_dir')
    records = _scalars_records(work_dir) or _text_log_records(work_dir)
    if not records:
        raise MMExtError(f'{work_dir}: no validation results in '
                         '*/vis_data/scalars.json or */*.log')
    return records


def pick_validation(records: List[Dict[str, float]], pick: str = 'last',
                    key: Optional[str] = None) -> Dict[str, float]:
    """The last validation, or the best one by ``key`` (higher is better).

    Args:
        records: From :func:`read_work_dir_validations`.
        pick: ``'last'`` or ``'best'``.
        key: Metric for ``'best'``; default the first of
            ``teacher/coco/bbox_mAP``, ``coco/bbox_mAP`` that is logged.
    """
    if pick == 'last':
        return records[-1]
    if key is None:
        key = next((k for k in ('teacher/coco/bbox_mAP', 'coco/bbox_mAP')
                    if any(k in r for r in records)), None)
    scored = [r for r in records
              if key in r and not math.isnan(r[key])]
    if not scored:
        raise MMExtError(f'no validation logs {key!r} to pick the best by')
    return max(scored, key=lambda r: r[key])


def classwise_ap(metrics: Dict[str, float],
                 class_names: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per-class AP grouped by model: ``{'teacher': {class: AP}, ...}``.

    The model is the key's prefix before the metric's own prefix
    (``teacher/coco/X_precision`` -> ``teacher``); keys without one
    (``coco/X_precision``) belong to ``'model'``.
    """
    out: Dict[str, Dict[str, float]] = {}
    for key, value in metrics.items():
        head, _, tail = key.rpartition('/')
        if not tail.endswith(_PER_CLASS_SUFFIX):
            continue
        name = tail[:-len(_PER_CLASS_SUFFIX)]
        if name not in class_names:
            continue
        parts = head.split('/')
        model = parts[0] if len(parts) > 1 else 'model'
        out.setdefault(model, {})[name] = value
    return out
