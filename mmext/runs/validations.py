"""Validation results of a run: scalars.json or the text log, metrics JSON.

mmengine writes every validation to ``<work_dir>/<timestamp>/vis_data/
scalars.json`` (one JSON object per line) and to the text log
``<work_dir>/<timestamp>/<timestamp>.log`` (``Iter(val) ... key: value``).
mmdet's CocoMetric with ``classwise=True`` names per-class AP
``coco/<class>_precision``; Soft Teacher's TeacherStudentValLoop prefixes
every key with ``teacher/`` or ``student/`` (mmdet/engine/runner/loops.py).

One rule picks the monitored model (:func:`monitored_map_key`): the teacher
when the run logs it (Soft Teacher), else the plain model.
"""
import json
import glob
import math
import os
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..utils import MMExtError, load_json
from .scalars import scalar_records

_PER_CLASS_SUFFIX = '_precision'
_LOG_VAL_LINE = re.compile(r'(?:Iter|Epoch)\(val\)')
_LOG_PAIR = re.compile(r'([\w./-]+): (-?\d+(?:\.\d+)?(?:e-?\d+)?|nan)')
# 'teacher/coco/<Class>_precision' or 'coco/<Class>_precision'.
_CLASS_KEY = re.compile(r'^(?:(?P<model>[^/]+)/)?(?P<prefix>[^/]+)/'
                        r'(?P<cls>.+)_precision$')
#: Overall AP keys, the monitored model first.
MAP_KEYS = ('teacher/coco/bbox_mAP', 'coco/bbox_mAP')


def read_metrics_json(path: str) -> Dict[str, float]:
    """Numeric entries of a metrics JSON (e.g. tools/test.py's)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise MMExtError(f'{path}: expected a JSON object of metrics')
    for key, value in data.items():
        if _is_validation({key: value}) and value is not None \
                and _to_float(value) is None:
            # an AP of `true` or "abc" must not become 1.0 or vanish
            raise MMExtError(f'{path}: {key} is {json.dumps(value)}, not a '
                             'number')
    return {k: _to_float(v) for k, v in data.items()
            if _to_float(v) is not None}


def _to_float(v) -> Optional[float]:
    """A number as float; None for anything else (``true`` is not 1.0)."""
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _is_validation(record: Dict[str, float]) -> bool:
    return any(k.endswith(_PER_CLASS_SUFFIX) or '/bbox_mAP' in k
               or k.startswith('coco/') for k in record)


def _scalars_validations(work_dir: str) -> List[Dict[str, float]]:
    return [{k: _to_float(v) for k, v in rec.items()
             if _to_float(v) is not None}
            for rec in scalar_records(work_dir) if _is_validation(rec)]


def _text_log_validations(work_dir: str) -> List[Dict[str, float]]:
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
    records = (_scalars_validations(work_dir)
               or _text_log_validations(work_dir))
    if not records:
        raise MMExtError(f'{work_dir}: no validation results in '
                         '*/vis_data/scalars.json or */*.log')
    return records


def monitored_map_key(records: Sequence[Dict[str, float]]) -> Optional[str]:
    """The overall-AP key of the monitored model: the teacher's when logged.

    Returns:
        ``'teacher/coco/bbox_mAP'``, ``'coco/bbox_mAP'``, or None when the
        records log neither.
    """
    return next((k for k in MAP_KEYS if any(k in r for r in records)), None)


def monitored_model(key: Optional[str]) -> str:
    """``'teacher'`` for the teacher's key, else ``'model'``."""
    return 'teacher' if key and key.startswith('teacher/') else 'model'


def map_key_prefix(key: str) -> str:
    """``'teacher/'`` or ``''``: what precedes ``coco/`` in the run's keys."""
    return key[:-len('coco/bbox_mAP')]


def pick_validation(records: List[Dict[str, float]], pick: str = 'last',
                    key: Optional[str] = None) -> Dict[str, float]:
    """The last validation, or the best one by ``key`` (higher is better).

    Args:
        records: From :func:`read_work_dir_validations`.
        pick: ``'last'`` or ``'best'``.
        key: Metric for ``'best'``; default :func:`monitored_map_key`.
    """
    if pick == 'last':
        return records[-1]
    if key is None:
        key = monitored_map_key(records)
    scored = [r for r in records
              if key in r and not math.isnan(r[key])]
    if not scored:
        raise MMExtError(f'no validation logs {key!r} to pick the best by')
    return max(scored, key=lambda r: r[key])


def _class_ap_items(metrics: Dict[str, float]
                    ) -> Iterator[Tuple[str, str, str, object]]:
    """``(model, prefix, class, value)`` of every per-class AP key."""
    for key, value in metrics.items():
        match = _CLASS_KEY.match(key)
        if match:
            yield match['model'] or '', match['prefix'], match['cls'], value


def classwise_ap(metrics: Dict[str, float],
                 class_names: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per-class AP grouped by model: ``{'teacher': {class: AP}, ...}``.

    The model is the key's prefix before the metric's own prefix
    (``teacher/coco/X_precision`` -> ``teacher``); keys without one
    (``coco/X_precision``) belong to ``'model'``. Values are as logged (NaN
    kept).
    """
    out: Dict[str, Dict[str, float]] = {}
    for model, _, name, value in _class_ap_items(metrics):
        if name in class_names:
            out.setdefault(model or 'model', {})[name] = value
    return out


def parse_class_metrics(metrics: Dict[str, float], metric: str = 'bbox'
                        ) -> Dict[str, dict]:
    """Split a validation metrics dict into per-model per-class AP.

    Args:
        metrics: The ``metrics`` of ``after_val_epoch``.
        metric: CocoMetric's metric name (``'bbox'``); the overall AP key is
            ``<prefix>/<metric>_mAP``.

    Returns:
        ``{model: {'mAP': float or None, 'classes': {class: AP}}}`` where
        model is ``'teacher'``/``'student'`` under TeacherStudentValLoop and
        ``''`` otherwise. AP values are in [0, 1]; NaN (class absent from the
        val set) is kept as None.
    """
    out: Dict[str, dict] = {}
    for model, prefix, name, value in _class_ap_items(metrics):
        entry = out.setdefault(model, dict(mAP=None, classes={}))
        entry['classes'][name] = finite_or_none(value)
        overall = '/'.join(p for p in (model, prefix, f'{metric}_mAP') if p)
        entry['mAP'] = finite_or_none(metrics.get(overall))
    return out


def finite_or_none(value) -> Optional[float]:
    """``float(value)`` when finite, else None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
