"""SafeHook's checkpoint contract in real Soft Teacher training.

Run A trains 4 iterations uninterrupted (checkpoints at 2 and 4, validation
at 2 and 4). Run B has the same config but stops after iteration 3, as a run
killed after its checkpoint at 2 would, then resumes from ``iter_2.pth`` to 4:
every JSON-lines file must hold one record per logged iteration (1, 2, 3, 4),
records and hook state up to the checkpoint must equal A's, and the state a
hook holds after the resume must equal the one saved in the checkpoint. Run C
fine-tunes from A's ``iter_4.pth`` (``load_from``): every hook starts fresh.
"""
import json
import os
import types

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook

from helpers import tiny_semi_config
from mmext.engine import build_runner
from mmext.hooks import (AnchorMatchStatsHook, ClassAPTrackerHook,
                         LossStabilityHook, PseudoLabelStatsHook, SafeHook)
from mmext.hooks.safe_hook import truncate_jsonl

HOOKS = ('LossStabilityHook', 'ClassAPTrackerHook', 'AnchorMatchStatsHook',
         'PseudoLabelStatsHook')
JSONL = ('loss_stability.jsonl', 'anchor_match_stats.jsonl',
         'pseudo_label_stats.jsonl')
#: Iterations with a record: every one, and the loss window (3) ending at 3.
LOGGED = {'loss_stability.jsonl': [3], 'anchor_match_stats.jsonl': [1, 2, 3, 4],
          'pseudo_label_stats.jsonl': [1, 2, 3, 4]}


def _config(root, work_dir):
    cfg = tiny_semi_config(root, work_dir, max_iters=4, val_interval=2)
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] == 'MeanTeacherHook'] + [
        dict(type='LossStabilityHook', window=3, warmup_iters=0),
        dict(type='ClassAPTrackerHook', plot=False),
        dict(type='AnchorMatchStatsHook', interval=1),
        dict(type='PseudoLabelStatsHook', interval=1)]
    cfg.default_hooks.checkpoint.interval = 2
    return cfg


class StateProbe(Hook):
    """The state of every mmext hook once all before_train ran."""
    priority = 'LOWEST'

    def before_train(self, runner):
        self.states = {type(h).__name__: _plain(h.state_dict())
                       for h in runner.hooks if isinstance(h, SafeHook)}


class StopAfter(Hook):
    """Ends training after iteration ``n``, like a run killed there."""

    def __init__(self, n):
        self.n = n

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.n:
            runner.train_loop.stop_training = True


def _plain(value):
    """Tensors, arrays and deques as lists, NaN as 'nan', for comparisons."""
    if isinstance(value, float) and value != value:
        return 'nan'
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == 'deque':
        return [_plain(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return _plain(value.tolist())
    return value


def _saved(path):
    meta = torch.load(path, weights_only=False)['meta']
    return {name: _plain(entry['state'])
            for name, entry in meta['mmext'].items()}, meta


def _records(work_dir, name):
    with open(os.path.join(work_dir, name)) as f:
        return [json.loads(line) for line in f]


def _hook(runner, cls):
    return next(h for h in runner.hooks if isinstance(h, cls))


@pytest.fixture(scope='module')
def runs(tiny_demo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('contract')
    a_dir, b_dir, c_dir = (str(tmp / n) for n in 'abc')
    runner_a = build_runner(_config(tiny_demo_root, a_dir))
    runner_a.train()

    first_b = build_runner(_config(tiny_demo_root, b_dir))
    first_b.register_hook(StopAfter(3))
    first_b.train()
    assert first_b.iter == 3
    b_partial = {name: _records(b_dir, name) for name in JSONL}
    cfg = _config(tiny_demo_root, b_dir)
    cfg.resume, cfg.load_from = True, os.path.join(b_dir, 'iter_2.pth')
    runner_b = build_runner(cfg)
    probe_b = StateProbe()
    runner_b.register_hook(probe_b)
    runner_b.train()

    cfg = _config(tiny_demo_root, c_dir)
    cfg.load_from = os.path.join(a_dir, 'iter_4.pth')
    cfg.train_cfg.max_iters = 2
    runner_c = build_runner(cfg)
    probe_c = StateProbe()
    runner_c.register_hook(probe_c)
    runner_c.train()
    return dict(a=a_dir, b=b_dir, c=c_dir, runner_a=runner_a,
                runner_b=runner_b, runner_c=runner_c, probe_b=probe_b,
                probe_c=probe_c, b_partial=b_partial)


def test_state_is_one_versioned_entry_per_hook(runs):
    _, meta = _saved(os.path.join(runs['a'], 'iter_2.pth'))
    assert sorted(meta['mmext']) == sorted(HOOKS)
    assert all(entry['version'] == 1 for entry in meta['mmext'].values())
    # nothing left in the layouts of earlier versions
    assert not [k for k in meta if k.startswith('mmext_')]


def test_resumed_state_equals_the_checkpoint_and_the_uninterrupted_run(runs):
    saved_b, _ = _saved(os.path.join(runs['b'], 'iter_2.pth'))
    saved_a, _ = _saved(os.path.join(runs['a'], 'iter_2.pth'))
    # seeded CPU training: up to the checkpoint, B is A
    assert saved_b == saved_a
    restored = runs['probe_b'].states
    for name in HOOKS:
        expected = saved_b[name]
        if name == 'ClassAPTrackerHook':
            # plus the validation mmengine ran right after the save
            with open(os.path.join(runs['a'], 'class_ap_history.json')) as f:
                expected = dict(history=[h for h in json.load(f)['history']
                                         if h['iter'] <= 2])
        assert restored[name] == expected, name
    assert len(restored['LossStabilityHook']['history']['loss']) == 2


def test_each_jsonl_has_one_record_per_iteration(runs):
    for name in JSONL:
        # the killed run got to 3; without the cut, 3 would be there twice
        logged = LOGGED[name]
        assert [r['iter'] for r in runs['b_partial'][name]] == [
            i for i in logged if i <= 3]
        records_b = _records(runs['b'], name)
        records_a = _records(runs['a'], name)
        assert [r['iter'] for r in records_b] == logged, name
        assert [r['iter'] for r in records_a] == logged, name
        before = sum(i <= 2 for i in logged)
        assert records_b[:before] == records_a[:before], name


def test_class_ap_history_has_each_validation_once(runs):
    with open(os.path.join(runs['b'], 'class_ap_history.json')) as f:
        history = json.load(f)['history']
    # (a 4-iteration student may predict nothing: no metrics of its own)
    keys = [(h['iter'], h['model']) for h in history]
    assert len(set(keys)) == len(keys)
    assert [i for i, m in keys if m == 'teacher'] == [2, 4]
    with open(os.path.join(runs['a'], 'class_ap_history.json')) as f:
        assert [h for h in history if h['iter'] <= 2] == [
            h for h in json.load(f)['history'] if h['iter'] <= 2]


def test_load_from_starts_every_hook_fresh(runs):
    states = runs['probe_c'].states
    assert states['ClassAPTrackerHook'] == dict(history=[])
    loss = states['LossStabilityHook']
    assert loss['best_mean'] == float('inf') and loss['history'] == {}
    assert loss['reference'] == {}
    assert states['PseudoLabelStatsHook']['window'] == []
    assert not any(any(map(any, t)) for t in
                   states['AnchorMatchStatsHook']['tables'].values())
    # after the fine-tune only its own validation and iterations are known
    runner = runs['runner_c']
    assert {h['iter'] for h in _hook(runner, ClassAPTrackerHook).history} <= {
        2}
    # A's plateau best (iteration 3) is not inherited; no window of 3 here
    assert _hook(runner, LossStabilityHook).best_iter == 0
    for name in JSONL[1:]:
        assert [r['iter'] for r in _records(runs['c'], name)] == [1, 2]


# -------------------------------------------- the contract without training
def _runner(tmp_path, hooks, resume=True, iteration=2):
    return types.SimpleNamespace(_resume=resume, hooks=hooks,
                                 iter=iteration, work_dir=str(tmp_path))


def test_old_checkpoint_layout_still_resumes(tmp_path):
    hook = LossStabilityHook(window=3)
    state = dict(keys=None, history={'loss': [3.0, 2.0]}, prev_cv={},
                 reference={}, alarms={}, best_mean=2.5, best_iter=2)
    checkpoint = {'meta': {'iter': 2}, 'mmext_loss_stability': state}
    runner = _runner(tmp_path, [hook])
    hook.after_load_checkpoint(runner, checkpoint)
    hook._on_train_start(runner)
    assert list(hook.history['loss']) == [3.0, 2.0]
    assert (hook.best_mean, hook.best_iter) == (2.5, 2)


def test_other_state_version_starts_fresh(tmp_path):
    hook = AnchorMatchStatsHook()
    hook.class_names = ['a']
    hook._reset()
    entry = dict(version=99, state=dict(
        tables={'rpn': torch.ones(1, 3), 'rcnn': torch.ones(1, 3)},
        class_names=['a'], last_record=None))
    runner = _runner(tmp_path, [hook])
    hook.after_load_checkpoint(runner, {'meta': {'mmext': {
        'AnchorMatchStatsHook': entry}}})
    hook._on_train_start(runner)
    assert hook.tables['rpn'].sum() == 0 and not hook.disabled


def test_two_instances_of_a_hook_keep_two_entries(tmp_path):
    first, second = LossStabilityHook(window=2), LossStabilityHook(window=2)
    first.best_mean, second.best_mean = 1.0, 2.0
    runner = _runner(tmp_path, [first, second])
    checkpoint = {}
    for hook in (first, second):
        hook.before_save_checkpoint(runner, checkpoint)
    assert sorted(checkpoint['meta']['mmext']) == [
        'LossStabilityHook', 'LossStabilityHook#1']
    again = [LossStabilityHook(window=2), LossStabilityHook(window=2)]
    runner = _runner(tmp_path, again)
    for hook in again:
        hook.after_load_checkpoint(runner, checkpoint)
        hook._on_train_start(runner)
    assert [h.best_mean for h in again] == [1.0, 2.0]


def test_truncate_jsonl_keeps_records_up_to_the_iteration(tmp_path):
    path = str(tmp_path / 'x.jsonl')
    with open(path, 'w') as f:
        f.write('{"iter": 1}\n{"iter": 2}\n{"iter": 3}\n{"iter": 2, "b": 1}\n'
                '{"iter": 4, "torn')
    assert truncate_jsonl(path, 2) == 3
    with open(path) as f:
        assert [json.loads(line)['iter'] for line in f] == [1, 2, 2]
    assert truncate_jsonl(str(tmp_path / 'missing.jsonl'), 2) is None


def test_pseudo_label_stats_is_collective():
    assert PseudoLabelStatsHook.collective and LossStabilityHook.collective
    assert not ClassAPTrackerHook.collective
