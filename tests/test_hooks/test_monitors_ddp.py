"""The monitors under torchrun with 2 processes: reduced values are right.

A probe hook (imported by the training processes through custom_imports)
records on every rank what that rank saw before the monitors reduce (its own
loss, its own anchor counts) and what the monitors hold after; the test then
checks the reduction against the per-rank records.
"""
import json
import os

import pytest
from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.hooks import Hook

from helpers import append_rank_record, ddp_probe_run, read_rank_records


def _find(runner, name):
    return next(h for h in runner.hooks if type(h).__name__ == name)


@HOOKS.register_module(force=True)
class MonitorProbeBefore(Hook):
    """Records this rank's loss and anchor counts before the monitors run."""
    priority = 'HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        anchor_hook = _find(runner, 'AnchorMatchStatsHook')
        tables = anchor_hook.tables
        if runner.iter == 2 and dist.get_rank() == 1:
            # injected failure, on one rank only, in iteration 4's counting
            anchor_hook._count = _fail
        _write(runner, dict(kind='before', iter=runner.iter + 1,
                            loss=float(outputs['loss']),
                            rpn=tables['rpn'].sum(0).tolist(),
                            rcnn=tables['rcnn'].sum(0).tolist()))


@HOOKS.register_module(force=True)
class MonitorProbeAfter(Hook):
    """Records the LossStabilityHook's (reduced) value of this iteration."""
    priority = 'LOW'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        history = _find(runner, 'LossStabilityHook').history['loss']
        _write(runner, dict(kind='after', iter=runner.iter + 1,
                            loss=history[-1], anchor_disabled=_find(
                                runner, 'AnchorMatchStatsHook').disabled))


def _fail(*args, **kwargs):
    raise RuntimeError('injected on rank 1')


def _write(runner, record):
    append_rank_record(runner, 'probe', record)


def _read(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def ddp_run(tiny_demo_root, tmp_path_factory):
    return ddp_probe_run(
        tiny_demo_root, tmp_path_factory.mktemp('monitors_ddp'),
        'test_monitors_ddp',
        [dict(type='LossStabilityHook', window=2),
         dict(type='AnchorMatchStatsHook', interval=2),
         dict(type='MonitorProbeBefore'), dict(type='MonitorProbeAfter')])


def test_loss_is_the_mean_over_ranks(ddp_run):
    ranks = [read_rank_records(ddp_run, 'probe', r)
             for r in range(2)]
    for it in range(1, 5):
        local = [next(x['loss'] for x in rank
                      if x['kind'] == 'before' and x['iter'] == it)
                 for rank in ranks]
        reduced = [next(x['loss'] for x in rank
                        if x['kind'] == 'after' and x['iter'] == it)
                   for rank in ranks]
        assert reduced[0] == reduced[1] == pytest.approx(sum(local) / 2)
    assert local[0] != local[1]  # the ranks trained on different images


def test_anchor_counts_are_summed_over_ranks(ddp_run):
    ranks = [read_rank_records(ddp_run, 'probe', r)
             for r in range(2)]
    records = _read(os.path.join(ddp_run, 'anchor_match_stats.jsonl'))
    assert [r['iter'] for r in records] == [2]  # rank 0 writes, once
    for record in records:
        for stage in ('rpn', 'rcnn'):
            num_gts, positives, none = [
                sum(next(x[stage] for x in rank if x['kind'] == 'before'
                         and x['iter'] == record['iter'])[i]
                    for rank in ranks) for i in range(3)]
            row = record[stage]['all']
            assert row['num_gts'] == num_gts > 0
            assert row['pos_per_gt'] == pytest.approx(positives / num_gts)
            assert row['no_pos_share'] == pytest.approx(none / num_gts)


def test_failure_on_one_rank_disables_the_hook_on_both(ddp_run):
    """Rank 1's counting fails in iteration 4; at that interval's all_reduce
    both ranks switch the hook off, and training ends (no deadlock)."""
    for rank in range(2):
        after = {x['iter']: x['anchor_disabled'] for x in read_rank_records(
            ddp_run, 'probe', rank)
            if x['kind'] == 'after'}
        assert after == {1: False, 2: False, 3: False, 4: True}
