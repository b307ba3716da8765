"""The monitors inside real Soft Teacher training: logs, files, resume, NaN."""
import importlib.util
import json
import os
import statistics

import pytest
import torch
from mmengine.hooks import Hook

from helpers import ROOT, read_log_text, read_scalars, tiny_semi_config
from mmext.engine import build_runner
from mmext.hooks import (AnchorMatchStatsHook, ClassAPTrackerHook,
                         LossStabilityHook)

WATCH = ['Severe_Rust', 'Chipped']


def _monitor_hooks(window=3):
    return [dict(type='LossStabilityHook', window=window),
            dict(type='ClassAPTrackerHook', watch_classes=WATCH),
            dict(type='AnchorMatchStatsHook', interval=2)]


def _config(root, work_dir, max_iters, val_interval=0, ckpt_interval=2):
    cfg = tiny_semi_config(root, work_dir, max_iters=max_iters,
                           val_interval=val_interval)
    # only the EMA teacher of the demo's hooks, then the monitors under test
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] == 'MeanTeacherHook'] + _monitor_hooks()
    cfg.default_hooks.checkpoint.interval = ckpt_interval
    return cfg


def _hook(runner, cls):
    return next(h for h in runner.hooks if isinstance(h, cls))


@pytest.fixture(scope='module')
def resumed_run(tiny_demo_root, tmp_path_factory):
    """2 iterations (val at 2, after checkpoint 2), resumed to 4 (val at 4)."""
    work_dir = str(tmp_path_factory.mktemp('monitors'))
    first = build_runner(_config(tiny_demo_root, work_dir, 2, val_interval=2))
    first.train()
    first_losses = list(first.message_hub.get_scalar('train/loss').data[0])
    cfg = _config(tiny_demo_root, work_dir, 4, val_interval=2)
    cfg.resume = True
    runner = build_runner(cfg)
    runner.train()
    return dict(work_dir=work_dir, runner=runner, first_losses=first_losses)


def test_cv_logged_equals_independent_cv(resumed_run):
    runner = resumed_run['runner']
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    last3 = [float(v) for v in losses[-3:]]
    expected = statistics.pstdev(last3) / statistics.fmean(last3)
    logged = runner.message_hub.get_scalar('train/stability/cv/loss').current()
    assert logged == pytest.approx(expected, rel=1e-6)
    keys = runner.message_hub.log_scalars
    assert 'train/stability/cv/sup_loss' in keys
    assert 'train/stability/cv/unsup_loss' in keys


def test_loss_window_restored_on_resume(resumed_run):
    hook = _hook(resumed_run['runner'], LossStabilityHook)
    window = list(hook.history['loss'])
    # iteration 2 was trained before the resume: its loss came from the checkpoint
    assert window[0] == pytest.approx(float(resumed_run['first_losses'][1]))
    assert len(window) == 3


def test_class_ap_history_survives_resume(resumed_run):
    work_dir = resumed_run['work_dir']
    hook = _hook(resumed_run['runner'], ClassAPTrackerHook)
    teacher = [h for h in hook.history if h['model'] == 'teacher']
    assert [h['iter'] for h in teacher] == [2, 4]
    with open(os.path.join(work_dir, 'class_ap_history.json')) as f:
        assert json.load(f)['history'] == hook.history
    # the values equal what mmengine itself logged for the same validation
    logged = [r for r in read_scalars(work_dir)
              if 'teacher/coco/Severe_Rust_precision' in r]
    assert [r['step'] for r in logged] == [2, 4]
    for record, row in zip(teacher, logged):
        assert record['classes']['Severe_Rust'] == pytest.approx(
            row['teacher/coco/Severe_Rust_precision'])
        assert record['mAP'] == pytest.approx(row['teacher/coco/bbox_mAP'])
    with open(os.path.join(work_dir, 'class_ap_history.csv')) as f:
        header = f.readline().strip().split(',')
    assert header[:3] == ['iter', 'model', 'mAP'] and 'Chipped' in header
    assert os.path.getsize(os.path.join(work_dir,
                                        'class_ap_progression.png')) > 1000


def test_anchor_stats_written_once_per_interval(resumed_run):
    work_dir = resumed_run['work_dir']
    with open(os.path.join(work_dir, 'anchor_match_stats.jsonl')) as f:
        records = [json.loads(line) for line in f]
    assert [r['iter'] for r in records] == [2, 4]
    for r in records:
        per_class = [v['num_gts'] for k, v in r['rpn'].items() if k != 'all']
        assert sum(per_class) == r['rpn']['all']['num_gts'] > 0
        assert r['rcnn']['all']['num_gts'] == r['rpn']['all']['num_gts']
    keys = resumed_run['runner'].message_hub.log_scalars
    assert 'train/anchor/rpn_pos_per_gt/all' in keys


def test_report_tool_on_the_run(resumed_run, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'report_tool', os.path.join(ROOT, 'tools', 'report.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'r.html')
    assert tool.main([resumed_run['work_dir'], '--out', out]) == 0
    printed = capsys.readouterr().out
    assert 'sup_loss_cls' in printed and out in printed
    with open(out) as f:
        page = f.read()
    # losses, class AP and anchor plots; no pseudo-label file in this run
    assert page.count('<img src="data:image/png;base64,') == 3
    assert 'Per-class AP progression' in page and 'Anchor matching' in page


class _NanWeights(Hook):
    """Test injection: iteration 2's losses are NaN, so its step poisons the
    weights (NaN gradients through clip_grad and SGD), as a real divergence."""
    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter != 1:
            return
        model = getattr(runner.model, 'module', runner.model)
        original = model.loss

        def nan_loss(*args, **kwargs):
            nan = float('nan')
            return {k: [x * nan for x in v] if isinstance(v, list) else v * nan
                    for k, v in original(*args, **kwargs).items()}

        model.loss = nan_loss


class _NanLoss(Hook):
    """Test injection: a NaN loss value at iteration 2, weights untouched."""
    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter == 1:
            outputs['sup_loss_cls'] = torch.tensor(float('nan'))


def test_nan_weights_stop_before_a_poisoned_checkpoint(tiny_demo_root,
                                                        tmp_path):
    work_dir = str(tmp_path)
    cfg = _config(tiny_demo_root, work_dir, 4, ckpt_interval=1)
    runner = build_runner(cfg)
    runner.register_hook(_NanWeights())
    runner.train()
    assert runner.iter == 2  # stopped in iteration 2, not 4
    assert os.path.isfile(os.path.join(work_dir, 'iter_1.pth'))
    assert not os.path.exists(os.path.join(work_dir, 'iter_2.pth'))
    with open(os.path.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_1.pth')
    state = torch.load(os.path.join(work_dir, 'iter_1.pth'),
                       weights_only=False)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())
    assert 'non-finite loss' in read_log_text(work_dir)


def test_nan_loss_with_finite_weights_stops_with_final_checkpoint(
        tiny_demo_root, tmp_path, monkeypatch):
    # and, injected: the anchor counting fails -> one warning, training goes on
    import mmext.hooks.anchor_match_stats as ams

    def broken(*args, **kwargs):
        raise RuntimeError('injected failure')

    monkeypatch.setattr(ams, 'positives_per_gt', broken)
    work_dir = str(tmp_path)
    cfg = _config(tiny_demo_root, work_dir, 4, ckpt_interval=100)
    runner = build_runner(cfg)
    runner.register_hook(_NanLoss())
    runner.train()
    assert runner.iter == 2
    assert os.path.isfile(os.path.join(work_dir, 'iter_2.pth'))
    anchor_hook = _hook(runner, AnchorMatchStatsHook)
    assert anchor_hook.disabled and 'injected failure' in anchor_hook.failure
    log = read_log_text(work_dir)
    assert log.count('AnchorMatchStatsHook disabled') == 1
    assert 'training stopped with a final checkpoint' in log
    assert 'assign' not in vars(runner.model.student.rpn_head.assigner)
