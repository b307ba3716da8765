"""Per-class pseudo thresholds in configs: check_config and --write-config."""
import copy
import json
import os

import numpy as np
import pytest
from mmengine.config import Config

from analysis_fixtures import load_tool
from helpers import DEMO_CONFIG, ROOT
from mmext.checks.config_check import check_config
from mmext.hooks.pseudo_label_record import tally_record
from mmext.hooks.pseudo_label_tally import (ALL_STAGES, ImageGT,
                                            PseudoLabelTally, tally_image)
from mmext.utils import run_cli

PER_CLASS_CONFIG = os.path.join(
    ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo_per-class-thr.py')
NAMES = ['Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear', 'Scratched']
KEY = 'model.semi_train_cfg'


@pytest.fixture(scope='module')
def demo_cfg():
    return Config.fromfile(DEMO_CONFIG)


def _findings(cfg, check='pseudo-thresholds'):
    return [f for f in check_config(cfg) if f.check == check]


def test_per_class_demo_config_is_clean():
    assert _findings(Config.fromfile(PER_CLASS_CONFIG)) == []


def test_list_on_mmdet_soft_teacher_is_an_error(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.semi_train_cfg.cls_pseudo_thr = [0.5] * 5
    (finding,) = [f for f in _findings(cfg) if f.severity == 'error']
    assert finding.key == f'{KEY}.cls_pseudo_thr'
    assert 'PerClassSoftTeacher' in finding.message


@pytest.mark.parametrize('spec, match', [
    ([0.5] * 4, 'needs 5 numbers'),
    ([0.5, 0.5, 1.5, 0.5, 0.5], r'in \[0, 1\]'),
    (dict(type='gmm', fraction=2), 'no argument fraction'),
    (dict(type='proportion', floor=0.9, ceiling=0.1), 'above ceiling'),
])
def test_malformed_per_class_specs(demo_cfg, spec, match):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.type = 'PerClassSoftTeacher'
    cfg.model.semi_train_cfg.rpn_pseudo_thr = spec
    errors = [f for f in _findings(cfg) if f.severity == 'error'
              and f.key == f'{KEY}.rpn_pseudo_thr']
    assert len(errors) == 1
    import re
    assert re.search(match, errors[0].message)


def test_policy_without_hook_is_an_error(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.type = 'PerClassSoftTeacher'
    cfg.model.semi_train_cfg.cls_pseudo_thr = dict(type='proportion')
    keys = {f.key for f in _findings(cfg) if f.severity == 'error'}
    assert keys == {'custom_hooks'}
    cfg.custom_hooks.append(dict(type='PseudoThresholdHook'))
    assert not [f for f in _findings(cfg) if f.severity == 'error']


def test_stage_at_or_below_initial_names_the_classes(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.type = 'PerClassSoftTeacher'
    cfg.model.semi_train_cfg.update(
        pseudo_label_initial_score_thr=[0.3, 0.3, 0.2, 0.3, 0.3],
        cls_pseudo_thr=[0.5, 0.3, 0.25, 0.2, 0.5])
    (warning,) = [f for f in _findings(cfg)
                  if f.key == f'{KEY}.cls_pseudo_thr']
    assert warning.severity == 'warning'
    assert 'Chipped (0.3 <= 0.3)' in warning.message
    assert 'Tip_Wear (0.2 <= 0.3)' in warning.message
    assert 'Broken' not in warning.message and 'Severe_Rust' not in warning.message


def _write_records(work_dir):
    """Records whose raw boxes of class c are one TP at 0.9 and FPs at
    0.2 + 0.1 c (so the precision target moves with the class)."""
    lines = []
    for it in range(2):
        tally = PseudoLabelTally(ALL_STAGES, 5, 100)
        for _ in range(4):
            gt = ImageGT(np.array([[10 + 60 * c, 10, 50 + 60 * c, 40]
                                   for c in range(5)], float), list(range(5)),
                         [False] * 5)
            tp = gt.bboxes.astype(float)
            fp = tp + 500
            bboxes = np.vstack([tp, fp])
            scores = np.array([0.9] * 5 + [0.2 + 0.1 * c for c in range(5)])
            labels = np.array(list(range(5)) * 2)
            boxes = {s: (bboxes, scores, labels) for s in ALL_STAGES}
            tally_image(tally, boxes, gt)
        lines.append(json.dumps(tally_record(
            tally, NAMES, {'initial': 0.3, 'rpn': 0.5, 'cls': 0.5,
                           'reg': 0.02}, 10 * it + 10, 10 * it + 1)))
    with open(os.path.join(work_dir, 'pseudo_label_stats.jsonl'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def test_write_config_switches_model_and_sets_recommendation(tmp_path,
                                                             capsys):
    work = tmp_path / 'run'
    work.mkdir()
    _write_records(str(work))
    # mmengine dumps the run's config into its work_dir
    Config.fromfile(DEMO_CONFIG).dump(str(work / 'demo.py'))
    tool = load_tool('plot_pseudo_stats')
    out = tmp_path / 'cfgs' / 'per_class.py'
    assert tool.main([str(work), '--target-precision', '0.6',
                      '--write-config', str(out), '--warmup-iters', '0']) == 0
    rec = json.loads((work / 'plot_pseudo_stats' /
                      'pseudo_thresholds.json').read_text())
    cfg = Config.fromfile(str(out))
    assert cfg.model.type == 'PerClassSoftTeacher'
    semi = cfg.model.semi_train_cfg
    expected = [r['thr_for_precision'] for r in rec]
    # precision >= 0.6 needs the FP bin excluded: thr just above 0.2 + 0.1 c
    assert expected == pytest.approx([0.21 + 0.1 * c for c in range(5)])
    assert semi.cls_pseudo_thr == semi.rpn_pseudo_thr == pytest.approx(
        expected)
    # initial 0.3 would hide Severe_Rust's recommended 0.21: lowered below it
    assert semi.pseudo_label_initial_score_thr == pytest.approx(
        [0.16, 0.26, 0.3, 0.3, 0.3])
    # the rest of the run's config is inherited
    assert cfg.model.semi_train_cfg.reg_pseudo_thr == 0.02
    assert not [f for f in check_config(cfg) if f.severity == 'error']


def test_write_config_errors_are_one_line(tmp_path, capsys):
    work = tmp_path / 'run'
    work.mkdir()
    _write_records(str(work))
    tool = load_tool('plot_pseudo_stats')
    # no config in the work_dir
    with pytest.raises(SystemExit) as info:
        run_cli(tool.main, [str(work), '--write-config',
                            str(tmp_path / 'x.py')])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'no config' in err
    with pytest.raises(SystemExit) as info:
        run_cli(tool.main, [str(work), '--write-config',
                            str(tmp_path / 'x.txt')])
    assert info.value.code == 2


def test_write_config_delays_the_thresholds_to_the_measured_iteration(
        tmp_path):
    """By default the values start where they were measured: before, the
    run's own thresholds (fixed policies + PseudoThresholdHook)."""

    from mmext.models.pseudo_thresholds import PseudoThresholds
    work = tmp_path / 'run'
    work.mkdir()
    _write_records(str(work))
    Config.fromfile(DEMO_CONFIG).dump(str(work / 'demo.py'))
    tool = load_tool('plot_pseudo_stats')
    out = tmp_path / 'delayed.py'
    assert tool.main([str(work), '--target-precision', '0.6', '--window', '1',
                      '--write-config', str(out)]) == 0
    cfg = Config.fromfile(str(out))
    semi = cfg.model.semi_train_cfg
    assert semi.cls_pseudo_thr.type == 'fixed'
    assert semi.cls_pseudo_thr.warmup_iters == 11  # first_iter of the window
    assert semi.cls_pseudo_thr.warmup_thr == 0.5
    assert [h['type'] for h in cfg.custom_hooks][-1] == 'PseudoThresholdHook'
    assert not [f for f in check_config(cfg) if f.severity == 'error']
    state = PseudoThresholds(semi, 5)
    state.update(10)
    assert state.values('cls').tolist() == [0.5] * 5  # the run's own, before
    assert state.values('initial').tolist() == [0.3] * 5
    state.update(11)
    assert state.values('cls').tolist() == pytest.approx(
        [0.21 + 0.1 * c for c in range(5)])
