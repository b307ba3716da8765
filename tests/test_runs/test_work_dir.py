"""mmext.runs: one reader of a work_dir, checked against the files it reads."""
import json
import os

import numpy as np
import pytest

from mmext.runs import WorkDir, files, find_run_config
from mmext.runs.pseudo_records import (kept_ratio, precision, recall,
                                       window_totals)
from mmext.runs.scalars import scalar_series
from mmext.runs.validations import (classwise_ap, monitored_map_key,
                                    parse_class_metrics)
from mmext.utils import MMExtError

CLASSES = ['a', 'b']


def _scalars(folder, records):
    os.makedirs(os.path.join(folder, 'vis_data'), exist_ok=True)
    with open(os.path.join(folder, 'vis_data', 'scalars.json'), 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


@pytest.fixture
def run(tmp_path):
    work = tmp_path / 'run'
    work.mkdir()
    (work / 'cfg.py').write_text('x = 1\n')
    _scalars(str(work / '20260101_000000'), [
        {'loss': 2.0, 'step': 10},
        {'teacher/coco/bbox_mAP': 0.1, 'student/coco/bbox_mAP': 0.05,
         'teacher/coco/a_precision': 0.2, 'teacher/coco/b_precision': 'nan',
         'student/coco/a_precision': 0.1, 'step': 20},
        {'loss': float('nan'), 'step': 30}])
    # a resumed run: a later timestamp folder
    _scalars(str(work / '20260102_000000'), [
        {'loss': 1.0, 'step': 40},
        {'teacher/coco/bbox_mAP': 0.3, 'teacher/coco/a_precision': 0.4,
         'teacher/coco/b_precision': -1, 'step': 40}])
    return WorkDir(str(work))


def test_validations_teacher_rule_and_history(run):
    records = run.validations()
    assert [r['step'] for r in records] == [20, 40]
    assert monitored_map_key(records) == 'teacher/coco/bbox_mAP'
    history = run.class_ap_history(CLASSES)
    assert history == [{'iter': 20, 'mAP': 0.1, 'a': 0.2, 'b': None},
                       {'iter': 40, 'mAP': 0.3, 'a': 0.4, 'b': None}]


def test_plain_model_key_without_teacher():
    recs = [{'coco/bbox_mAP': 0.2, 'coco/a_precision': 0.3}]
    assert monitored_map_key(recs) == 'coco/bbox_mAP'
    assert classwise_ap(recs[0], CLASSES) == {'model': {'a': 0.3}}
    assert parse_class_metrics(recs[0]) == {
        '': {'mAP': 0.2, 'classes': {'a': 0.3}}}


def test_losses_scalars_and_config(run):
    assert run.losses() == [2.0, 1.0]  # the NaN one is dropped
    series = scalar_series(run.path)
    # the series keeps what was logged, NaN included, in step order
    assert [step for step, _ in series['loss']] == [10, 30, 40]
    assert np.isnan(series['loss'][1][1]) and series['loss'][2] == (40, 1.0)
    assert run.config_path().endswith('cfg.py')
    assert run.records(files.PSEUDO_LABEL_STATS) == []


def test_missing_config_is_one_line(tmp_path):
    with pytest.raises(MMExtError, match='no config'):
        find_run_config(str(tmp_path))


def _pseudo_record(rng, it):
    stages = ['raw', 'initial', 'rpn', 'cls']
    counts = {s: {c: int(rng.integers(0, 9)) for c in CLASSES}
              for s in stages}
    rec = {'iter': it, 'first_iter': it - 9, 'num_images': 3,
           'classes': CLASSES, 'stages': stages, 'counts': counts,
           'thresholds': {'cls': 0.5}}
    if it % 20:  # some records without ground truth
        rec['tp'] = {s: {c: int(rng.integers(0, 5)) for c in CLASSES}
                     for s in stages}
        rec['fp'] = {s: {c: int(rng.integers(0, 5)) for c in CLASSES}
                     for s in stages}
        rec['num_gt'] = {c: int(rng.integers(0, 9)) for c in CLASSES}
    return rec


def test_window_totals_are_sums_over_records():
    rng = np.random.default_rng(0)
    recs = [_pseudo_record(rng, it) for it in (10, 20, 30, 40)]
    totals = window_totals(recs)
    for c in CLASSES + ['all']:
        names = CLASSES if c == 'all' else [c]
        raw = sum(r['counts']['raw'][n] for r in recs for n in names)
        cls = sum(r['counts']['cls'][n] for r in recs for n in names)
        tp = sum(r['tp']['cls'][n] for r in recs if 'tp' in r for n in names)
        fp = sum(r['fp']['cls'][n] for r in recs if 'tp' in r for n in names)
        gt = sum(r['num_gt'][n] for r in recs if 'tp' in r for n in names)
        assert kept_ratio(totals, 'cls', c) == (cls / raw if raw else None)
        assert precision(totals, 'cls', c) == (tp / (tp + fp) if tp + fp
                                                else None)
        assert recall(totals, 'cls', c) == (tp / gt if gt else None)
    assert totals['gt_records'] == 2
    assert totals['iters'] == (1, 40)
