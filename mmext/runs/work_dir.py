"""One reader of a training run's work_dir.

What mmengine and mmext's hooks write into a work_dir, read one way:

- the config mmengine dumped (:func:`find_run_config`);
- validations, with one rule for the monitored model (teacher when logged);
- per-class AP history of that model;
- hook records by name (:mod:`mmext.runs.files`);
- mmengine's scalars, warnings, checkpoints and predictions.
"""
import glob
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

from ..utils import MMExtError, read_jsonl
from . import files
from .log_warnings import read_warnings
from .scalars import scalar_series, training_losses
from .validations import (classwise_ap, monitored_map_key, monitored_model,
                          read_work_dir_validations)


def find_run_config(work_dir: str) -> str:
    """The config mmengine dumped into a work_dir (the newest ``*.py``).

    Raises:
        MMExtError: the work_dir holds no ``.py`` config.
    """
    found = sorted(glob.glob(osp.join(work_dir, '*.py')), key=osp.getmtime)
    if not found:
        raise MMExtError(f'{work_dir}: no config (*.py) in the work_dir; '
                         'pass --config')
    return found[-1]


class WorkDir:
    """A training run's folder, read on demand (nothing is cached).

    Args:
        path: The run's work_dir.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def file(self, name: str) -> str:
        """``<work_dir>/<name>`` (``name`` from :mod:`mmext.runs.files`)."""
        return osp.join(self.path, name)

    def has(self, name: str) -> bool:
        """Whether the run holds the file ``name``."""
        return osp.isfile(self.file(name))

    def records(self, name: str) -> List[dict]:
        """The JSON-lines records of a hook file; [] when absent.

        Raises:
            MMExtError: a line is not a JSON object.
        """
        return read_jsonl(self.file(name)) if self.has(name) else []

    def config_path(self) -> str:
        """See :func:`find_run_config`."""
        return find_run_config(self.path)

    def validations(self) -> List[Dict[str, float]]:
        """See :func:`~mmext.runs.validations.read_work_dir_validations`."""
        return read_work_dir_validations(self.path)

    def class_ap_history(self, class_names: Sequence[str]) -> List[dict]:
        """Per validation: ``iter``, ``mAP`` and AP per class of the
        monitored model (None where NaN or negative)."""
        records = self.validations()
        key = monitored_map_key(records)
        model = monitored_model(key)
        out = []
        for rec in records:
            aps = classwise_ap(rec, class_names).get(model, {})
            out.append({'iter': rec.get('step', rec.get('iter')),
                        'mAP': rec.get(key) if key else None,
                        **{n: _ap_or_none(aps.get(n)) for n in class_names}})
        return out

    def scalars(self, skipped: Optional[Dict[str, int]] = None) -> dict:
        """See :func:`~mmext.runs.scalars.scalar_series`."""
        return scalar_series(self.path, skipped)

    def losses(self) -> List[float]:
        """The logged training ``loss`` values, in order."""
        return training_losses(self.path)

    def warnings(self) -> List[dict]:
        """See :func:`~mmext.runs.log_warnings.read_warnings`."""
        return read_warnings(self.path)

    def predictions(self) -> Optional[str]:
        """``<work_dir>/eval/predictions.pkl`` when tools/test.py wrote it."""
        return self.file(files.PREDICTIONS) if self.has(
            files.PREDICTIONS) else None



def _ap_or_none(value) -> Optional[float]:
    if value is None or math.isnan(value) or value < 0:
        return None
    return float(value)
