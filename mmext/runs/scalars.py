"""mmengine's scalar log: ``<work_dir>/<timestamp>/vis_data/scalars.json``.

One JSON object per logged step (training lines carry ``loss``, validation
lines the metrics). A resumed run adds a ``<timestamp>`` folder; the readers
here take every folder, oldest first.
"""
import glob
import json
import math
import os
from typing import Dict, Iterator, List, Optional, Tuple

from .files import SCALARS


def run_folders(work_dir: str) -> List[str]:
    """The ``<timestamp>`` folders mmengine made in ``work_dir``, oldest first."""
    found = glob.glob(os.path.join(work_dir, '*', 'vis_data'))
    found += glob.glob(os.path.join(work_dir, '*', '*.log'))
    return sorted({os.path.dirname(p) for p in found})


def read_jsonl_lenient(path: str, skipped: Optional[Dict[str, int]] = None
                       ) -> List[dict]:
    """JSON objects of a JSON-lines file; bad lines are counted, not fatal.

    Args:
        path: The file.
        skipped: Counter dict, incremented under the file's base name.
    """
    records = []
    with open(path, errors='replace') as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif skipped is not None:
                name = os.path.basename(path)
                skipped[name] = skipped.get(name, 0) + 1
    return records


def scalar_records(work_dir: str, skipped: Optional[Dict[str, int]] = None
                   ) -> Iterator[dict]:
    """Every record of every ``scalars.json`` of the run, oldest first.

    Args:
        work_dir: The run.
        skipped: Counter for unreadable lines (see
            :func:`read_jsonl_lenient`).
    """
    for folder in run_folders(work_dir):
        path = os.path.join(folder, SCALARS)
        if os.path.isfile(path):
            yield from read_jsonl_lenient(path, skipped)


def scalar_series(work_dir: str, skipped: Optional[Dict[str, int]] = None
                  ) -> Dict[str, List[Tuple[int, float]]]:
    """Key -> sorted (step, value) over all runs; a later run wins a step."""
    merged: Dict[str, Dict[int, float]] = {}
    for record in scalar_records(work_dir, skipped):
        step = record.get('step', record.get('iter'))
        if not isinstance(step, (int, float)):
            continue
        for key, value in record.items():
            if key in ('step', 'iter', 'epoch') or not isinstance(
                    value, (int, float)):
                continue
            merged.setdefault(key, {})[int(step)] = float(value)
    return {k: sorted(v.items()) for k, v in merged.items()}


def training_losses(work_dir: str) -> List[float]:
    """The finite logged ``loss`` values of the run, in order."""
    return [float(r['loss']) for r in scalar_records(work_dir)
            if isinstance(r.get('loss'), (int, float))
            and math.isfinite(r['loss'])]
