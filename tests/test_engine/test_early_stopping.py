"""mmengine's EarlyStoppingHook in the demo config: it stops training on a flat
mAP, and tools/test.py works on a config that carries it."""
import json
import os
import subprocess
import sys

from mmengine.config import Config

from helpers import DEMO_CONFIG, ROOT, tiny_semi_config
from mmext.engine import build_runner, drop_train_only_hooks

MONITOR = 'teacher/coco/bbox_mAP'


def test_demo_config_stops_on_the_teacher_map():
    hooks = [h for h in Config.fromfile(DEMO_CONFIG).custom_hooks
             if h['type'] == 'EarlyStoppingHook']
    assert len(hooks) == 1
    assert hooks[0]['monitor'] == MONITOR and hooks[0]['rule'] == 'greater'
    assert hooks[0]['patience'] >= 1


def test_drop_train_only_hooks():
    cfg = Config(dict(custom_hooks=[
        dict(type='MeanTeacherHook'),
        dict(type='EarlyStoppingHook', monitor=MONITOR)]))
    assert drop_train_only_hooks(cfg) == ['EarlyStoppingHook']
    assert [h['type'] for h in cfg.custom_hooks] == ['MeanTeacherHook']
    assert drop_train_only_hooks(cfg) == []


def test_flat_map_stops_training_and_test_tool_runs(tiny_demo_root, tmp_path):
    work_dir = str(tmp_path / 'train')
    cfg = tiny_semi_config(tiny_demo_root, work_dir, max_iters=8,
                           val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    # A 2-iteration teacher may score every box under 0.05; an empty result
    # has no mAP key at all (and EarlyStoppingHook then skips the check).
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0
    # No mAP can gain 1.0 over its best: the 2nd validation is the last.
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] == 'MeanTeacherHook'] + [
        dict(type='EarlyStoppingHook', monitor=MONITOR, rule='greater',
             min_delta=1.0, patience=1)]
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 4  # validations at 2 and 4, not 6 and 8
    assert os.path.isfile(os.path.join(work_dir, 'iter_4.pth'))
    assert not os.path.exists(os.path.join(work_dir, 'iter_6.pth'))

    # Evaluate on a machine without the training data: the hook must not
    # make mmengine build the train loop (its dataloader would fail).
    for ds in cfg.train_dataloader.dataset.datasets:
        ds.ann_file = 'annotations/not_here.json'
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', cfg_path,
         os.path.join(work_dir, 'iter_4.pth'), '--work-dir',
         str(tmp_path / 'eval')],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        # this checkout's mmext, also where another one is pip-installed
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(
            [ROOT, os.environ.get('PYTHONPATH', '')])))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert 'EarlyStoppingHook: left out' in proc.stdout
    with open(tmp_path / 'eval' / 'metrics.json') as f:
        assert 'coco/bbox_mAP' in json.load(f)
