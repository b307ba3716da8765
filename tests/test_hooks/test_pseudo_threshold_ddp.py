"""Per-class thresholds under torchrun (2 processes, gloo): one set for all.

A probe hook records on every rank the raw teacher scores that rank
recorded before each update (ABOVE_NORMAL: before PseudoThresholdHook
gathers them) and the thresholds in force after it (LOW). The test checks
that both ranks hold identical thresholds at every iteration, that the
ranks saw different images, and that one process fed the same images (rank
0's, then rank 1's, update by update) computes the same thresholds.
"""

import pytest
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from helpers import append_rank_record, ddp_probe_run, read_rank_records

SEMI = dict(
    pseudo_label_initial_score_thr=0.1,
    rpn_pseudo_thr=dict(type='gmm', warmup_thr=0.17, min_scores=4,
                        update_interval=2, window_images=64, floor=0.1,
                        ceiling=0.9),
    cls_pseudo_thr=dict(type='proportion', warmup_thr=0.17, min_scores=2,
                        update_interval=1, window_images=3, floor=0.1,
                        ceiling=0.9, class_shares=[0.3, 0.2, 0.2, 0.1, 0.2],
                        boxes_per_image=2.0))


def _write(runner, record):
    append_rank_record(runner, 'thr_probe', record)


@HOOKS.register_module(force=True)
class ThresholdProbeBefore(Hook):
    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        _write(runner, dict(kind='pending', iter=runner.iter + 1,
                            images=runner.model.module.pseudo_thresholds.pending))


@HOOKS.register_module(force=True)
class ThresholdProbeAfter(Hook):
    priority = 'LOW'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        _write(runner, dict(
            kind='after', iter=runner.iter + 1,
            thr=runner.model.module.pseudo_thresholds.in_force()))



def _per_class(cfg):
    cfg.model.type = 'PerClassSoftTeacher'
    cfg.model.semi_train_cfg.update(SEMI)


@pytest.fixture(scope='module')
def ddp_run(tiny_demo_root, tmp_path_factory):
    return ddp_probe_run(
        tiny_demo_root, tmp_path_factory.mktemp('thr_ddp'),
        'test_pseudo_threshold_ddp',
        [dict(type='PseudoThresholdHook'), dict(type='ThresholdProbeBefore'),
         dict(type='ThresholdProbeAfter')], edit=_per_class)


def test_ranks_hold_identical_thresholds(ddp_run):
    ranks = [read_rank_records(ddp_run, 'thr_probe', r) for r in range(2)]
    after = [{x['iter']: x['thr'] for x in rank if x['kind'] == 'after'}
             for rank in ranks]
    assert sorted(after[0]) == [1, 2, 3, 4]
    assert after[0] == after[1]
    pending = [[x['images'] for x in rank if x['kind'] == 'pending']
               for rank in ranks]
    assert pending[0] != pending[1]  # the ranks saw different images
    # thresholds moved off the warm-up value (the policies did something)
    assert after[0][4]['cls'] != [0.17] * 5


def test_one_process_on_the_same_scores_gives_the_same(ddp_run):
    from mmext.models.pseudo_thresholds import PseudoThresholds
    ranks = [read_rank_records(ddp_run, 'thr_probe', r) for r in range(2)]
    single = PseudoThresholds(SEMI, 5)
    for it in range(1, 5):
        for rank in ranks:
            rec = next(x for x in rank if x['kind'] == 'pending'
                       and x['iter'] == it)
            for labels, scores in rec['images']:
                single.record(labels, scores)
        if single.due(it):
            single.update(it)
        expected = next(x['thr'] for x in ranks[0]
                        if x['kind'] == 'after' and x['iter'] == it)
        assert single.in_force() == expected, it
