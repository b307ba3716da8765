"""PseudoThresholdHook in real Soft Teacher training: logs, counts, resume."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook

from helpers import read_scalars, tiny_semi_config
from mmext.engine import build_runner

CLASSES = ('Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear', 'Scratched')
RPN = [0.3, 0.26, 0.28, 0.27, 0.29]


def _config(root, work_dir, max_iters):
    cfg = tiny_semi_config(root, work_dir, max_iters=max_iters)
    cfg.model.type = 'PerClassSoftTeacher'
    # random-init teacher scores lie in 0.25-0.7: these keep some boxes
    cfg.model.semi_train_cfg.update(
        pseudo_label_initial_score_thr=0.25, rpn_pseudo_thr=RPN,
        cls_pseudo_thr=dict(type='proportion', warmup_thr=0.27, min_scores=2,
                            update_interval=2, window_images=64, floor=0.25,
                            ceiling=0.9))
    cfg.custom_hooks = [
        dict(type='MeanTeacherHook', momentum=0.01),
        dict(type='PseudoThresholdHook'),
        dict(type='PseudoLabelStatsHook', interval=2,
             gt_ann_file='annotations/train_unlabeled_gt.json')]
    cfg.default_hooks.checkpoint.interval = 2
    cfg.randomness = dict(seed=0)
    # The student view keeps only resize + flip, so no pseudo box leaves the
    # image and the min_pseudo_bbox_wh filter drops none: the stage counts
    # of PseudoLabelStatsHook then compare 1:1 with what the losses get.
    for ds in cfg.train_dataloader.dataset.datasets:
        for t in ds.pipeline:
            if 'unsup_student' in t:
                t['unsup_student'] = [
                    sub for sub in t['unsup_student'] if sub['type'] in (
                        'RandomResize', 'RandomFlip', 'PackDetInputs')]
    return cfg


class BoxCounter(Hook):
    """Counts, per class, the pseudo boxes mmdet's rpn/cls losses receive
    (PerClassSoftTeacher calls them through ``super()``, so wrapping them on
    mmdet's class sees exactly what was passed)."""

    SPIED = (('rpn_loss_by_pseudo_instances', 'rpn', 1),
             ('rcnn_cls_loss_by_pseudo_instances', 'cls', 2))

    def __init__(self):
        self.counts = {'rpn': np.zeros(5), 'cls': np.zeros(5)}
        self._saved = {}

    def before_train(self, runner):
        from mmdet.models.detectors import SoftTeacher
        for name, stage, pos in self.SPIED:
            original = SoftTeacher.__dict__[name]
            self._saved[name] = original

            def wrapper(model, *args, _orig=original, _stage=stage, _pos=pos):
                for sample in args[_pos]:
                    self.counts[_stage] += np.bincount(
                        sample.gt_instances.labels.numpy(), minlength=5)
                return _orig(model, *args)
            setattr(SoftTeacher, name, wrapper)

    def after_train(self, runner):
        from mmdet.models.detectors import SoftTeacher
        for name, original in self._saved.items():
            setattr(SoftTeacher, name, original)


@pytest.fixture(scope='module')
def run(tiny_demo_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('thr_hook'))
    runner = build_runner(_config(tiny_demo_root, work_dir, 4))
    counter = BoxCounter()
    runner.register_hook(counter, 'LOWEST')
    runner.train()
    return dict(work_dir=work_dir, runner=runner, counter=counter)


def _records(work_dir):
    with open(osp.join(work_dir, 'pseudo_label_stats.jsonl')) as f:
        return [json.loads(line) for line in f]


def test_thresholds_logged_and_recorded(run):
    scalars = [r for r in read_scalars(run['work_dir'])
               if 'pseudo/thr_cls/Chipped' in r]
    assert len(scalars) == 4  # logger interval 1
    model = run['runner'].model
    last = scalars[-1]
    for c, name in enumerate(CLASSES):
        assert last[f'pseudo/thr_rpn/{name}'] == pytest.approx(RPN[c])
        assert last[f'pseudo/thr_cls/{name}'] == pytest.approx(
            model.pseudo_thresholds.values('cls')[c])
    recs = _records(run['work_dir'])
    assert recs[-1]['thresholds']['rpn'] == RPN
    # iterations 3-4 were filtered with the thresholds of the update after
    # iteration 2 (logged at iteration 3); the record states those
    assert recs[-1]['thresholds']['cls'] == pytest.approx(
        [scalars[-2][f'pseudo/thr_cls/{n}'] for n in CLASSES])
    # the proportion policy moved at least one class off its warm-up value
    assert model.pseudo_thresholds.stages['cls'].adapted.any()


def test_stats_hook_counts_the_thresholds_in_force(run):
    """PseudoLabelStatsHook's rpn/cls counts equal the boxes mmdet's loss
    methods were given (the per-class filters as applied)."""
    recs = _records(run['work_dir'])
    assert all(r['student_view']['in'] == r['student_view']['kept']
               for r in recs)
    for stage in ('rpn', 'cls'):
        counted = np.array([sum(r['counts'][stage][n] for r in recs)
                            for n in CLASSES])
        assert counted.tolist() == run['counter'].counts[stage].tolist()
    assert sum(run['counter'].counts['cls']) > 0


def test_state_in_checkpoint(run):
    ckpt = torch.load(osp.join(run['work_dir'], 'iter_4.pth'),
                      weights_only=False)
    state = ckpt['meta']['mmext']['PseudoThresholdHook']['state']
    model = run['runner'].model
    assert state['stages']['cls']['values'] == model.pseudo_thresholds.values(
        'cls').tolist()
    assert len(state['window']) == len(model.pseudo_thresholds.window) > 0


class StateProbe(Hook):
    """Captures the model's threshold state once before_train is done."""

    def before_train(self, runner):
        self.state = runner.model.pseudo_thresholds.state_dict()


def test_resume_restores_load_from_does_not(run, tiny_demo_root, tmp_path):
    saved = torch.load(osp.join(run['work_dir'], 'iter_2.pth'),
                       weights_only=False)['meta']['mmext']['PseudoThresholdHook']['state']
    cfg = _config(tiny_demo_root, run['work_dir'], 4)
    cfg.resume = True
    cfg.load_from = osp.join(run['work_dir'], 'iter_2.pth')
    runner = build_runner(cfg)
    probe = StateProbe()
    runner.register_hook(probe, 'LOWEST')
    runner.train()
    assert probe.state['window'] == saved['window']
    assert probe.state['stages'] == saved['stages']

    cfg = _config(tiny_demo_root, str(tmp_path / 'finetune'), 2)
    cfg.load_from = osp.join(run['work_dir'], 'iter_2.pth')
    runner = build_runner(cfg)
    probe = StateProbe()
    runner.register_hook(probe, 'LOWEST')
    runner.train()
    assert probe.state['window'] == []
    assert probe.state['stages']['cls']['values'] == [0.27] * 5


def test_hook_on_plain_soft_teacher_disables_with_one_warning(
        tiny_demo_root, tmp_path):
    cfg = tiny_semi_config(tiny_demo_root, str(tmp_path), max_iters=1)
    cfg.custom_hooks = [dict(type='PseudoThresholdHook')]
    runner = build_runner(cfg)
    runner.train()
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'PseudoThresholdHook')
    assert hook.disabled and 'PerClassSoftTeacher' in hook.failure


def test_policy_failure_falls_back_and_training_goes_on(
        tiny_demo_root, tmp_path, monkeypatch):
    import mmext.models.threshold_policies as policies
    def broken(*args, **kwargs):
        raise FloatingPointError('injected')
    monkeypatch.setattr(policies, 'proportion_threshold', broken)
    cfg = _config(tiny_demo_root, str(tmp_path), 4)
    cfg.custom_hooks = cfg.custom_hooks[:2]
    runner = build_runner(cfg)
    runner.train()
    state = runner.model.pseudo_thresholds
    assert runner.iter == 4
    assert state.failure and 'injected' in state.failure
    assert state.values('cls').tolist() == [0.27] * 5


def test_fixed_policy_switches_at_warmup_iters(tiny_demo_root, tmp_path):
    """A --write-config style run: the run's own thresholds until
    warmup_iters, the per-class values from then on (logged every
    iteration)."""
    cfg = _config(tiny_demo_root, str(tmp_path), 3)
    values = [0.3, 0.26, 0.28, 0.27, 0.29]
    cfg.model.semi_train_cfg.cls_pseudo_thr = dict(
        type='fixed', values=values, warmup_thr=0.27, warmup_iters=2,
        update_interval=1)
    cfg.custom_hooks = cfg.custom_hooks[:2]
    runner = build_runner(cfg)
    runner.train()
    rows = [r for r in read_scalars(str(tmp_path)) if 'pseudo/thr_cls/Chipped' in r]
    # logged after each iteration's update: iteration 1 still warm-up
    assert [r['pseudo/thr_cls/Chipped'] for r in rows] == pytest.approx(
        [0.27, 0.26, 0.26])
