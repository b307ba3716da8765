"""mmext.compat: private internals refuse untested versions in one line."""
import importlib.metadata
import subprocess
import sys

import pytest

from mmext import compat
from mmext.utils import MMExtError


def test_installed_versions_are_the_tested_ones():
    for package in compat.TESTED:
        compat.require_tested(package, 'x')  # the suite runs on them


@pytest.mark.parametrize('version, ok', [
    ('0.10.7', True), ('0.10.8', False), ('0.9.1', False),
    ('0.10.7+cu121', True), ('1.0.0rc1', False)])
def test_version_range(monkeypatch, version, ok):
    monkeypatch.setattr(importlib.metadata, 'version', lambda name: version)
    if ok:
        compat.require_tested('mmengine', 'Runner._has_loaded')
    else:
        with pytest.raises(MMExtError) as err:
            compat.require_tested('mmengine', 'Runner._has_loaded')
        text = str(err.value)
        assert '\n' not in text and version in text
        assert 'Runner._has_loaded' in text and '0.10.7' in text


def test_uses_go_through_the_check(monkeypatch):
    monkeypatch.setattr(importlib.metadata, 'version', lambda name: '9.9.9')

    class Runner:
        _has_loaded = False
    with pytest.raises(MMExtError, match='untested'):
        compat.mark_weights_loaded(Runner())
    with pytest.raises(MMExtError, match='faster-coco-eval 9.9.9'):
        compat.cocoeval_params(object())
    with pytest.raises(MMExtError, match='mmdet 9.9.9'):
        compat.import_anchor_generator()
    with pytest.raises(MMExtError, match='mmdet 9.9.9.*call order'):
        compat.require_soft_teacher_call_order()


def test_no_private_internal_outside_compat():
    """Every private mmengine/mmdet/faster-coco-eval use is in compat.py."""
    out = subprocess.run(
        ['git', 'grep', '-nE', r'\._save_checkpoint\(|\._has_loaded|\._paramsEval|'
         r'faster_eval_api_cpp|import_leaf\(', '--', 'mmext', 'tools'],
        capture_output=True, text=True, cwd=compat.__file__.rsplit(
            '/mmext/', 1)[0])
    lines = [line for line in out.stdout.splitlines()
             if not line.startswith(('mmext/compat.py',
                                     'mmext/utils/leaf_import.py'))]
    assert lines == [], lines


def test_reading_runs_and_predictions_imports_no_torch():
    """Reading annotations, predictions and work_dirs pays for neither torch
    nor mmdet.models (python -X importtime lists every module imported)."""
    code = ('import os; os.environ["MMEXT_NO_REGISTER"] = "1"\n'
            'import mmext.runs, mmext.runs.teacher_competence\n'
            'import mmext.evaluation.predictions, mmext.evaluation.threshold_sweep'
            '\nimport mmext.evaluation.teacher_competence, mmext.data\n')
    proc = subprocess.run([sys.executable, '-X', 'importtime', '-c', code],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split('|')[-1].strip() for line in
                proc.stderr.splitlines() if line.startswith('import time:')}
    assert 'mmext.runs.work_dir' in imported
    assert 'torch' not in imported and 'mmdet.models' not in imported
