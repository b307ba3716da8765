"""The monitors' pure parts and their decisions, without a training run."""
import math
import statistics
import types

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

import mmext.hooks.class_ap_tracker as cat
import mmext.hooks.loss_stability as ls
from mmext.hooks import ClassAPTrackerHook, LossStabilityHook, SafeHook
from mmext.hooks.anchor_match_stats import accumulate, positives_per_gt


def test_coefficient_of_variation_matches_statistics():
    values = [2.0, 2.1, 1.9, 2.05, 1.95]
    expected = statistics.pstdev(values) / statistics.fmean(values)
    assert ls.coefficient_of_variation(values) == pytest.approx(expected)
    assert math.isnan(ls.coefficient_of_variation([0.0, 0.0]))


def test_loss_components_split_sup_and_unsup():
    log_vars = dict(loss=torch.tensor(3.0, requires_grad=True),
                    sup_loss_cls=torch.tensor(1.0), sup_loss_bbox=0.5,
                    sup_acc=90.0, unsup_loss_cls=torch.tensor(1.5))
    values = ls.loss_components(log_vars)
    assert 'sup_acc' not in values
    assert values['sup_loss'] == 1.5 and values['unsup_loss'] == 1.5
    assert values['loss'] == 3.0


def _runner(tmp_path, hooks=()):
    """The parts of a Runner the hooks use (a real MessageHub)."""
    return types.SimpleNamespace(
        iter=0, work_dir=str(tmp_path), hooks=list(hooks),
        message_hub=MessageHub(f'test_{id(tmp_path)}'),
        train_loop=types.SimpleNamespace(stop_training=False),
        model=torch.nn.Linear(2, 2))


@pytest.fixture
def warnings_of(monkeypatch):
    """Collects the warning texts a hook module prints."""
    seen = []

    def record(msg, logger=None, level=None):
        seen.append(msg)

    for module in (ls, cat):
        monkeypatch.setattr(module, 'print_log', record)
    return seen


def _feed(hook, runner, losses):
    for value in losses:
        hook.after_train_iter(runner, 0, outputs=dict(loss=value))
        runner.iter += 1


def test_loss_cv_logged_and_plateau_stops(tmp_path, warnings_of):
    hook = LossStabilityHook(window=4, cv_thr=0.5, patience_iters=8,
                             stop_on_plateau=True)
    runner = _runner(tmp_path)
    losses = [4.0, 3.9, 3.8, 3.7, 3.0, 3.1, 2.9, 3.0] + [3.0, 3.1] * 6
    _feed(hook, runner, losses[:8])
    cv = runner.message_hub.get_scalar('train/stability/cv/loss').current()
    tail = losses[4:8]
    assert cv == pytest.approx(statistics.pstdev(tail) / statistics.fmean(tail))
    assert hook.best_iter == 8 and not runner.train_loop.stop_training
    _feed(hook, runner, losses[8:])  # window means 3.05 >= 3.0 from iter 8 on
    assert runner.train_loop.stop_training
    assert any('has not decreased for 8 iterations' in w for w in warnings_of)


def test_loss_cv_threshold_and_growth_warn(tmp_path, warnings_of):
    hook = LossStabilityHook(window=4, cv_thr=0.03, cv_increase_thr=0.10)
    runner = _runner(tmp_path)
    _feed(hook, runner, [1.0, 1.01, 0.99, 1.0, 1.0, 1.2, 0.8, 1.0])
    text = '\n'.join(warnings_of)
    assert 'iter 4' not in text  # CV 0.7% < 3%
    assert 'CV of loss over the last 4 iterations' in text and 'iter 8' in text
    assert 'CV of loss grew from' in text
    assert not runner.train_loop.stop_training  # warnings only by default


def test_nan_loss_with_finite_weights_stops(tmp_path, warnings_of):
    hook = LossStabilityHook(window=4)
    runner = _runner(tmp_path)
    _feed(hook, runner, [1.0, float('inf')])
    assert runner.train_loop.stop_training and not hook.block_checkpoints
    assert any('non-finite loss (loss=inf); weights are finite' in w
               for w in warnings_of)


def test_loss_state_round_trip(tmp_path):
    hook = LossStabilityHook(window=3)
    runner = _runner(tmp_path)
    _feed(hook, runner, [3.0, 2.0, 1.0, 1.5])
    restored = LossStabilityHook(window=3)
    restored.load_state_dict(hook.state_dict(), runner)
    assert list(restored.history['loss']) == [2.0, 1.0, 1.5]
    assert (restored.best_mean, restored.best_iter) == (hook.best_mean, 3)


def _metrics(model_map, per_class):
    """Metric keys as CocoMetric + TeacherStudentValLoop name them."""
    out = {}
    for model, mAP in model_map.items():
        out[f'{model}/coco/bbox_mAP'] = mAP
        out[f'{model}/coco/bbox_mAP_50'] = 0.9
        for name, ap in per_class.items():
            out[f'{model}/coco/{name}_precision'] = ap
    return out


def test_parse_class_metrics():
    parsed = cat.parse_class_metrics(
        _metrics({'teacher': 0.3, 'student': 0.2},
                 {'Severe_Rust': 0.1, 'Tip_Wear': float('nan')}))
    assert parsed['teacher'] == dict(
        mAP=0.3, classes={'Severe_Rust': 0.1, 'Tip_Wear': None})
    assert parsed['student']['mAP'] == 0.2
    plain = cat.parse_class_metrics({'coco/bbox_mAP': 0.4,
                                     'coco/Broken_precision': 0.5})
    assert plain == {'': dict(mAP=0.4, classes={'Broken': 0.5})}


def test_class_ap_warnings_and_files(tmp_path, warnings_of):
    hook = ClassAPTrackerHook(watch_classes=['Severe_Rust', 'Chipped'],
                              max_map_drop=0.05, max_other_drop=0.01,
                              plot=False)
    runner = _runner(tmp_path)
    steps = [  # (iter, mAP, Severe_Rust, Chipped, Broken)
        (100, 0.50, 0.10, 0.20, 0.80),
        (200, 0.48, 0.12, 0.22, 0.70),   # 4% below best: no mAP warning
        (300, 0.47, 0.15, 0.25, 0.795),  # 6% below: warns; Broken rose
    ]
    for it, mAP, rust, chip, broken in steps:
        runner.iter = it
        hook.after_val_epoch(runner, _metrics(
            {'teacher': mAP, 'student': mAP / 2},
            dict(Severe_Rust=rust, Chipped=chip, Broken=broken)))
    text = '\n'.join(warnings_of)
    assert 'iter 200: teacher since iter 100: watched classes improved' in text
    assert 'Broken -0.100' in text
    assert 'iter 200: teacher mAP' not in text
    assert 'iter 300: teacher mAP 0.470 is 6.0% below its best 0.500' in text
    rows = (tmp_path / 'class_ap_history.csv').read_text().splitlines()
    assert rows[0] == 'iter,model,mAP,Severe_Rust,Chipped,Broken'
    assert len(rows) == 1 + 3 * 2


def test_positive_counts_match_brute_force():
    rng = np.random.default_rng(0)
    table = torch.zeros(3, 3, dtype=torch.float64)
    expected = np.zeros((3, 3))
    for _ in range(5):
        num_gts = int(rng.integers(1, 6))
        gt_inds = torch.from_numpy(rng.integers(-1, num_gts + 1, 200))
        labels = torch.from_numpy(rng.integers(0, 3, num_gts))
        counts = positives_per_gt(gt_inds, num_gts)
        accumulate(table, labels, counts)
        for j in range(num_gts):
            positives = sum(1 for g in gt_inds.tolist() if g == j + 1)
            expected[labels[j]] += [1, positives, positives == 0]
    assert np.array_equal(table.numpy(), expected)


class _Broken(SafeHook):
    calls = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        type(self).calls += 1
        raise KeyError('sup_loss_cls')


def test_safe_hook_disables_after_one_failure():
    hook = _Broken()
    hook.after_train_iter(None, 0)
    hook.after_train_iter(None, 1)
    assert hook.disabled and _Broken.calls == 1
    assert "after_train_iter: KeyError: 'sup_loss_cls'" in hook.failure


def test_anchor_state_round_trip():
    from mmext.hooks import AnchorMatchStatsHook
    hook = AnchorMatchStatsHook(interval=5)
    hook.class_names = ['a', 'b']
    hook._reset()
    accumulate(hook.tables['rpn'], torch.tensor([0, 1, 1]),
               torch.tensor([3, 0, 2]))
    restored = AnchorMatchStatsHook(interval=5)
    restored.class_names = ['a', 'b']
    restored.load_state_dict(hook.state_dict(), None)
    assert restored.class_names == ['a', 'b']
    assert restored.tables['rpn'].tolist() == [[1, 3, 0], [2, 2, 1]]
