"""Fixtures for the diagnosis-tool tests: one real tiny Soft Teacher run.

A teacher/student validation and a test pass of the demo config give the
real files the tools read: the work_dir log (vis_data/scalars.json and the
text log), metrics.json and mmdet's predictions pickle.
"""
import importlib.util
import json
import os

import pytest

from helpers import ROOT, tiny_semi_config


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (tools/ is not a package)."""
    path = os.path.join(ROOT, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def demo_eval_run(tiny_demo_root, tmp_path_factory):
    """A Soft Teacher runner's validation (teacher and student), then a test.

    ``runner.val()`` runs TeacherStudentValLoop and logs like a training
    run's validation; the test pass is ``runner.test()`` with CocoMetric and
    DumpDetResults, the evaluators tools/test.py uses (in the same runner to
    save building a second one). The model is untrained: the files, not the
    scores, are what the tools read.

    Returns:
        dict with ``data_root``, ``work_dir``, ``config`` (dumped .py),
        ``metrics`` (metrics.json) and ``predictions`` (.pkl).
    """
    from mmext.engine import build_runner
    work_dir = str(tmp_path_factory.mktemp('demo_run'))
    cfg = tiny_semi_config(tiny_demo_root, work_dir, max_iters=1,
                           val_interval=1)
    cfg.log_level = 'INFO'  # the text log then holds the validation line
    eval_dir = os.path.join(work_dir, 'eval')
    os.makedirs(eval_dir, exist_ok=True)
    preds = os.path.join(eval_dir, 'predictions.pkl')
    cfg.test_evaluator = [
        cfg.val_evaluator,
        dict(type='DumpDetResults', out_file_path=preds)
    ]
    config = os.path.join(work_dir, 'tiny_config.py')
    cfg.dump(config)
    runner = build_runner(cfg)
    runner.val()
    metrics = runner.test()
    metrics_path = os.path.join(eval_dir, 'metrics.json')
    with open(metrics_path, 'w', encoding='utf-8') as f:
        json.dump({k: float(v) for k, v in metrics.items()}, f)
    return dict(data_root=tiny_demo_root, work_dir=work_dir, config=config,
                metrics=metrics_path, predictions=preds)
