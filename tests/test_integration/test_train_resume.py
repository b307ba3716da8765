"""The demo Soft Teacher config: train, checkpoint, resume, evaluate (real Runner)."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, read_log_text, read_scalars, tiny_semi_config
from mmext.engine import build_runner

PY = sys.executable


@pytest.fixture(scope='module')
def trained_and_resumed(tiny_demo_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('train_resume'))
    cfg = tiny_semi_config(tiny_demo_root, work_dir, max_iters=4, val_interval=4)
    # keep every detection so that the barely trained student is evaluated too
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0
    build_runner(cfg).train()
    first_ckpt = os.path.join(work_dir, 'iter_4.pth')
    assert os.path.isfile(first_ckpt)
    cfg = tiny_semi_config(tiny_demo_root, work_dir, max_iters=6, val_interval=6)
    cfg.resume = True
    cfg.log_level = 'INFO'
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.0
    runner = build_runner(cfg)
    runner.train()
    return work_dir, runner


def test_resume_continues_from_the_checkpoint(trained_and_resumed):
    work_dir, runner = trained_and_resumed
    assert runner.iter == 6
    log = read_log_text(work_dir)
    assert 'resumed epoch: 0, iter: 4' in log
    ckpt = torch.load(os.path.join(work_dir, 'iter_6.pth'), weights_only=False)
    assert ckpt['meta']['iter'] == 6
    # the resumed run only trained iterations 5 and 6
    iters = [r['iter'] for r in read_scalars(work_dir) if 'loss' in r]
    assert iters == [1, 2, 3, 4, 5, 6]
    # losses of a Soft Teacher run: supervised and unsupervised parts
    last = [r for r in read_scalars(work_dir) if 'loss' in r][-1]
    assert {'sup_loss_cls', 'sup_loss_bbox', 'sup_loss_rpn_cls'} <= set(last)
    assert any(k.startswith('unsup_') for k in last)


def test_validation_reports_teacher_and_student_classwise(trained_and_resumed):
    work_dir, _ = trained_and_resumed
    vals = [r for r in read_scalars(work_dir) if 'teacher/coco/bbox_mAP' in r]
    assert [r['step'] for r in vals] == [4, 6]
    for r in vals:
        assert 'student/coco/bbox_mAP' in r
        assert 0.0 <= r['teacher/coco/bbox_mAP'] <= 1.0


def test_test_tool_writes_metrics_and_predictions(trained_and_resumed, tiny_demo_root, tmp_path):
    work_dir, _ = trained_and_resumed
    cfg_path = str(tmp_path / 'cfg.py')
    cfg = tiny_semi_config(tiny_demo_root, work_dir, max_iters=6, val_interval=6)
    cfg.dump(cfg_path)
    out = str(tmp_path / 'preds.pkl')
    proc = subprocess.run(
        [PY, 'tools/test.py', cfg_path, os.path.join(work_dir, 'iter_6.pth'),
         '--work-dir', str(tmp_path / 'eval'), '--out', out],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'eval' / 'metrics.json') as f:
        metrics = json.load(f)
    assert 'coco/bbox_mAP' in metrics
    assert 'coco/Severe_Rust_precision' in metrics  # classwise
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8  # one entry per val image
    assert {'img_id', 'pred_instances'} <= set(preds[0])


class _Exploit:
    """Pickles to a call that writes a file: what weights_only must refuse."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_untrusted_checkpoint_is_refused(tiny_demo_root, tmp_path):
    marker = str(tmp_path / 'pwned')
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'x': _Exploit(marker)}}, evil)
    cfg = tiny_semi_config(tiny_demo_root, str(tmp_path / 'wd'), max_iters=1)
    cfg.load_from = evil
    runner = build_runner(cfg)
    with pytest.raises(Exception, match='Weights only load failed'):
        runner.load_or_resume()
    assert not os.path.exists(marker)


def test_resume_from_outside_work_dir_stays_protected(tiny_demo_root, tmp_path):
    marker = str(tmp_path / 'pwned')
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'x': _Exploit(marker)}}, evil)
    cfg = tiny_semi_config(tiny_demo_root, str(tmp_path / 'wd'), max_iters=1)
    cfg.resume, cfg.load_from = True, evil
    runner = build_runner(cfg)
    with pytest.raises(Exception, match='Weights only load failed'):
        runner.load_or_resume()
    assert not os.path.exists(marker)
