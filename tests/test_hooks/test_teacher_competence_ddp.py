"""TeacherCompetenceHook under torchrun (2 processes, gloo): one record for
the whole validation set, and the same calibrated thresholds on every rank."""
import json
import os

import pytest
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from helpers import append_rank_record, ddp_probe_run, read_rank_records


@HOOKS.register_module(force=True)
class CompetenceRankProbe(Hook):
    """After each validation: this rank's thresholds in force."""
    priority = 'LOWEST'

    def after_val_epoch(self, runner, metrics=None):
        append_rank_record(runner, 'competence', dict(
            iter=runner.iter,
            thr=runner.model.module.pseudo_thresholds.in_force()))


def _read(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _calibrated(cfg):
    cfg.model.type = 'PerClassSoftTeacher'
    cfg.model.semi_train_cfg.pseudo_label_initial_score_thr = 0.0
    cfg.model.semi_train_cfg.cls_pseudo_thr = dict(
        type='calibrated', warmup_thr=0.5, precision_target=0.01,
        confidence=0.5, floor=0.0)


@pytest.fixture(scope='module')
def ddp_run(tiny_demo_root, tmp_path_factory):
    return ddp_probe_run(
        tiny_demo_root, tmp_path_factory.mktemp('competence_ddp'),
        'test_teacher_competence_ddp',
        [dict(type='TeacherCompetenceHook'), dict(type='PseudoThresholdHook'),
         dict(type='CompetenceRankProbe')], val_interval=2, edit=_calibrated)


def test_one_record_per_validation_over_all_images(ddp_run, tiny_demo_root):
    from mmext.data import load_coco
    records = _read(os.path.join(ddp_run, 'teacher_competence.jsonl'))
    assert [r['iter'] for r in records] == [2, 4]
    # 8 validation images, split over 2 ranks, each image's boxes once
    assert all(r['num_images'] == 8 for r in records)
    gt = load_coco(os.path.join(tiny_demo_root, 'annotations', 'val.json'))
    assert records[-1]['num_gt'] == {
        n: c for n, c in gt.class_counts().items()}


def test_ranks_hold_identical_calibrated_thresholds(ddp_run):
    ranks = [read_rank_records(ddp_run, 'competence', r) for r in range(2)]
    assert [x['iter'] for x in ranks[0]] == [2, 4]
    assert ranks[0] == ranks[1]
    from mmext.runs.teacher_competence import calibrated_threshold
    last = _read(os.path.join(ddp_run, 'teacher_competence.jsonl'))[-1]
    expected = []
    for name in last['classes']:
        thr = calibrated_threshold(last['thresholds'], last['tp'][name],
                                   last['fp'][name], 0.01, 0.5)
        expected.append(0.5 if thr is None else min(thr, 0.95))
    assert ranks[0][-1]['thr']['cls'] == pytest.approx(expected)
