"""config_diff: the user's Trial-2 vs Trial-3 hyperparameters, mmdet configs."""
import json

import pytest

from analysis_fixtures import load_tool
from helpers import DEMO_CONFIG, ROOT
from mmext.analysis.config_diff import (AUG, DATA, LOSS, OPTIM, SEMI,
                                        diff_configs, flatten, group_of)
from mmext.utils import run_cli

# seed 002: Trial-2 (worked) and Trial-3 (collapsed), 20 hyperparameters
TRIAL2 = dict(lr0=0.005, lrf=0.02, momentum=0.937, weight_decay=0.0005,
              warmup_epochs=5.0, box=0.03, cls=0.3, obj=1.2, iou_t=0.15,
              fl_gamma=0.0, hsv_h=0.02, hsv_s=0.5, hsv_v=0.3, degrees=5.0,
              translate=0.2, scale=0.8, mosaic=0.8, mixup=0.4,
              copy_paste=0.3, batch_size=16)
TRIAL3 = dict(lr0=0.004, lrf=0.015, momentum=0.940, weight_decay=0.0008,
              warmup_epochs=6.0, box=0.025, cls=0.25, obj=1.4, iou_t=0.12,
              fl_gamma=0.5, hsv_h=0.015, hsv_s=0.6, hsv_v=0.35, degrees=3.0,
              translate=0.15, scale=0.7, mosaic=0.9, mixup=0.3,
              copy_paste=0.4, batch_size=20)
FOCAL_THR = f'{ROOT}/configs/soft_teacher/' \
    'soft-teacher_faster-rcnn_tiny_demo_focal-lower-thr.py'


def write_yaml(values, path):
    path.write_text(''.join(f'{k}: {v}\n' for k, v in values.items()))
    return str(path)


@pytest.fixture
def trials(tmp_path):
    return (write_yaml(TRIAL2, tmp_path / 'trial2.yaml'),
            write_yaml(TRIAL3, tmp_path / 'trial3.yaml'))


def test_trial2_vs_trial3_table(trials):
    diff = diff_configs(*trials)
    got = {c.key: (c.before, c.after) for c in diff.changes}
    assert got == {k: (TRIAL2[k], TRIAL3[k]) for k in TRIAL2}
    groups = {c.key: c.group for c in diff.changes}
    assert groups['lr0'] == groups['weight_decay'] == OPTIM
    assert groups['fl_gamma'] == groups['obj'] == LOSS
    assert groups['mosaic'] == groups['hsv_s'] == AUG
    assert groups['batch_size'] == DATA
    rules = {r.rule: r for r in diff.risks}
    assert rules['focal'].severity == 'high'
    assert 'fl_gamma 0.0 -> 0.5' in rules['focal'].reason
    batch = rules['batch size without LR scaling']
    # linear scaling: 0.005 * 20 / 16
    assert f'{0.005 * 20 / 16:.6g}' in batch.reason
    assert 'auto_scale_lr' in batch.reason
    assert 'weight decay up, LR down' in rules
    assert {'box', 'cls', 'obj'} <= set(rules['loss weights rebalanced'].keys)
    assert 'change one thing at a time' in rules[
        'several groups at once'].reason
    assert 'pseudo thresholds with loss' not in rules


def test_batch_with_linear_lr_or_auto_scale_does_not_fire(tmp_path):
    a = write_yaml(dict(lr0=0.005, batch_size=16), tmp_path / 'a.yaml')
    b = write_yaml(dict(lr0=0.00625, batch_size=20), tmp_path / 'b.yaml')
    assert not diff_configs(a, b).risks
    c = write_yaml(dict(lr0=0.005, batch_size=20), tmp_path / 'c.yaml')
    assert [r.rule for r in diff_configs(a, c).risks] == [
        'batch size without LR scaling']
    # mmdet: train_dataloader.batch_size with auto_scale_lr enabled
    base = tmp_path / 'base.py'
    base.write_text('train_dataloader = dict(batch_size=2)\n'
                    'optim_wrapper = dict(optimizer=dict(lr=0.02))\n'
                    'auto_scale_lr = dict(enable=False, base_batch_size=2)\n')
    auto = tmp_path / 'auto.py'
    auto.write_text("_base_ = ['./base.py']\n"
                    'train_dataloader = dict(batch_size=4)\n'
                    'auto_scale_lr = dict(enable=True)\n')
    manual = tmp_path / 'manual.py'
    manual.write_text("_base_ = ['./base.py']\n"
                      'train_dataloader = dict(batch_size=4)\n')
    assert not [r for r in diff_configs(str(base), str(auto)).risks
                if r.rule.startswith('batch')]
    assert [r.rule for r in diff_configs(str(base), str(manual)).risks] == [
        'batch size without LR scaling']


def test_mmdet_demo_vs_focal_lower_thresholds():
    diff = diff_configs(DEMO_CONFIG, FOCAL_THR)
    rules = [r.rule for r in diff.risks]
    assert rules.count('focal') == 2  # RPN and R-CNN heads
    assert 'pseudo thresholds with loss' in rules
    assert diff.group_counts()[SEMI] == 3
    assert group_of('model.semi_train_cfg.cls_pseudo_thr') == SEMI
    assert group_of('model.detector.roi_head.bbox_head.loss_cls.gamma') == LOSS
    assert not diff_configs(DEMO_CONFIG, DEMO_CONFIG).changes


def test_flatten_indexes_pipelines_keeps_number_lists():
    flat = flatten(dict(p=[dict(type='Resize', scale=[(1, 2), (3, 4)])],
                        ratios=[0.5, 1.0]))
    assert flat == {'p.0.type': 'Resize', 'p.0.scale': [[1, 2], [3, 4]],
                    'ratios': [0.5, 1.0]}


def test_cli_exit_codes_and_json(trials, tmp_path, capsys):
    tool = load_tool('config_diff')
    assert tool.main(list(trials)) == 0
    assert 'high' in capsys.readouterr().out
    out = tmp_path / 'diff.json'
    assert tool.main(list(trials) + ['--json', '--fail-on', 'high',
                                      '--out', str(out)]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert len(printed['changes']) == 20
    a = write_yaml(dict(lr0=0.01), tmp_path / 'a.yaml')
    b = write_yaml(dict(lr0=0.02), tmp_path / 'b.yaml')
    assert tool.main([a, b, '--fail-on', 'high']) == 0
    with pytest.raises(SystemExit) as exc:
        run_cli(tool.main, [a, str(tmp_path / 'missing.yaml')])
    assert exc.value.code == 2
    assert 'missing.yaml' in capsys.readouterr().err


def test_scope_keys_are_not_changes_and_anchor_count_is_a_risk(tmp_path):
    from mmext.analysis.config_diff import diff_configs
    base = tmp_path / 'a.py'
    base.write_text(
        "model = dict(_scope_='mmdet', rpn_head=dict(anchor_generator=dict("
        "type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0])))\n")
    same_count = tmp_path / 'b.py'
    same_count.write_text(
        "model = dict(rpn_head=dict(anchor_generator=dict("
        "type='AnchorGenerator', scales=[8], ratios=[0.3, 1.0, 2.0])))\n")
    diff = diff_configs(str(base), str(same_count))
    assert [c.key for c in diff.changes] == [
        'model.rpn_head.anchor_generator.ratios']  # no '_scope_ removed'
    assert not [r for r in diff.risks if r.rule == 'anchor_count']
    more = tmp_path / 'c.py'
    more.write_text(
        "model = dict(rpn_head=dict(anchor_generator=dict("
        "type='AnchorGenerator', scales=[8], "
        "ratios=[0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0])))\n")
    (risk,) = [r for r in diff_configs(str(base), str(more)).risks
               if r.rule == 'anchor_count']
    assert risk.severity == 'high' and 'ratios 3 -> 7' in risk.reason


def test_zero_values_where_the_rules_divide(tmp_path):
    from mmext.analysis.config_diff import diff_configs
    a, b = tmp_path / 'a.yaml', tmp_path / 'b.yaml'
    a.write_text('batch_size: 16\nlr0: 0.01\nweight_decay: 0.0005\n')
    b.write_text('batch_size: 0\nlr0: 0\nweight_decay: 0\n')
    diff = diff_configs(str(a), str(b))
    assert {c.key for c in diff.changes} == {'batch_size', 'lr0',
                                             'weight_decay'}
    b.write_text('batch_size: 32\nlr0: 0.0\nweight_decay: 0.0005\n')
    a.write_text('batch_size: 0\nlr0: 0.0\nweight_decay: 0.0\n')
    diff_configs(str(a), str(b))  # no ZeroDivisionError either way
