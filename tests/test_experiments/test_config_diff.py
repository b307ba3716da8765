"""config_diff: the user's Trial-2 vs Trial-3 hyperparameters, mmdet configs."""
import json
import re

import pytest

from analysis_fixtures import load_tool
from helpers import DEMO_CONFIG, ROOT
from mmext.experiments.config_diff import (AUG, DATA, LOSS, OPTIM, SEMI,
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
    per_class = diff_configs(DEMO_CONFIG, FOCAL_THR.replace(
        'focal-lower-thr', 'per-class-thr'))
    # `proportion = dict(_delete_=True, ...)` has no base dict to replace:
    # mmengine leaves the key in, it is not a change
    assert not [c for c in per_class.changes if '_delete_' in c.key]
    (hook,) = [c for c in per_class.changes if c.kind == 'inserted']
    assert hook.note == 'PseudoThresholdHook inserted after MeanTeacherHook'


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
    from mmext.experiments.config_diff import diff_configs
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
    from mmext.experiments.config_diff import diff_configs
    a, b = tmp_path / 'a.yaml', tmp_path / 'b.yaml'
    a.write_text('batch_size: 16\nlr0: 0.01\nweight_decay: 0.0005\n')
    b.write_text('batch_size: 0\nlr0: 0\nweight_decay: 0\n')
    diff = diff_configs(str(a), str(b))
    assert {c.key for c in diff.changes} == {'batch_size', 'lr0',
                                             'weight_decay'}
    b.write_text('batch_size: 32\nlr0: 0.0\nweight_decay: 0.0005\n')
    a.write_text('batch_size: 0\nlr0: 0.0\nweight_decay: 0.0\n')
    diff_configs(str(a), str(b))  # no ZeroDivisionError either way


# --- pipelines, copies of variables, anchors (issue 15) ---------------------

FASTER_RCNN = "_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'\n"
# mmdet's faster-rcnn train_pipeline with RandomFlip at 0.3 and
# PhotoMetricDistortion inserted after it, assigned to the dataloader again
# (mmengine resolved `pipeline=train_pipeline` in the base file)
CHANGED_PIPELINE = """
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.3),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs'),
]
"""
REASSIGN = 'train_dataloader = dict(dataset=dict(pipeline=train_pipeline))\n'
SEVEN_RATIOS = ('model = dict(rpn_head=dict(anchor_generator=dict('
                'ratios=[0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0])))\n')


@pytest.fixture
def faster_rcnn_pair(tmp_path):
    a = tmp_path / 'faster_rcnn.py'
    a.write_text(FASTER_RCNN)
    b = tmp_path / 'faster_rcnn_pmd.py'
    b.write_text(FASTER_RCNN + CHANGED_PIPELINE + REASSIGN + SEVEN_RATIOS)
    return str(a), str(b)


def test_faster_rcnn_inserted_transform_is_one_row(faster_rcnn_pair, capsys):
    diff = diff_configs(*faster_rcnn_pair)
    rows = {c.key: c for c in diff.changes}
    assert sorted(rows) == ['model.rpn_head.anchor_generator.ratios',
                            'train_pipeline[PhotoMetricDistortion]',
                            'train_pipeline[RandomFlip].prob']
    (inserted,) = [c for c in diff.changes if c.kind == 'inserted']
    assert inserted.note == 'PhotoMetricDistortion inserted after RandomFlip'
    assert inserted.after == {'type': 'PhotoMetricDistortion'}
    assert inserted.group == AUG
    assert (inserted.path_a, inserted.path_b) == (None, 'train_pipeline.4')
    prob = rows['train_pipeline[RandomFlip].prob']
    assert (prob.before, prob.after, prob.kind) == (0.5, 0.3, 'changed')
    assert not [c for c in diff.changes if '_scope_' in repr(c)]
    # the dataloader's copy is folded into train_pipeline, not listed again
    assert [(al.key, al.same_as) for al in diff.aliases] == [
        ('train_dataloader.dataset.pipeline', 'train_pipeline')]
    assert not [r for r in diff.risks if r.rule == 'stale copy']
    (anchors,) = [r for r in diff.risks if r.rule == 'anchor_count']
    assert 'ratios 3 -> 7' in anchors.reason
    assert 'rpn_cls 3 -> 7, rpn_reg 12 -> 28' in anchors.reason
    assert 'no longer loads' in anchors.reason
    many = [r for r in diff.risks if r.rule == 'several groups at once']
    assert many[0].reason.startswith('3 changes in 2 groups')

    assert load_tool('config_diff').main(list(faster_rcnn_pair)) == 0
    out = capsys.readouterr().out
    assert out.startswith('3 changes between')
    assert out.count('PhotoMetricDistortion inserted after RandomFlip') == 1
    assert out.count('train_dataloader.dataset.pipeline: same as '
                     'train_pipeline') == 1


def test_a_variable_changed_without_its_copy_is_a_stale_copy(tmp_path):
    a = tmp_path / 'a.py'
    a.write_text(FASTER_RCNN)
    b = tmp_path / 'b.py'
    b.write_text(FASTER_RCNN + CHANGED_PIPELINE)  # dataloader not reassigned
    diff = diff_configs(str(a), str(b))
    assert {c.key for c in diff.changes} == {
        'train_pipeline[PhotoMetricDistortion]',
        'train_pipeline[RandomFlip].prob'}
    assert not diff.aliases
    (stale,) = [r for r in diff.risks if r.rule == 'stale copy']
    assert stale.severity == 'high'
    assert stale.keys == ['train_pipeline', 'train_dataloader.dataset.pipeline']


def test_val_and_test_dataloader_copies_are_listed_once(tmp_path):
    a = tmp_path / 'a.py'
    a.write_text(FASTER_RCNN)
    b = tmp_path / 'b.py'
    b.write_text(FASTER_RCNN + """
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
""")
    diff = diff_configs(str(a), str(b))
    assert [(c.key, c.before, c.after) for c in diff.changes] == [
        ('test_pipeline[Resize].scale', [1333, 800], [1000, 600])]
    assert {(al.key, al.same_as) for al in diff.aliases} == {
        ('val_dataloader.dataset.pipeline', 'test_pipeline'),
        ('test_dataloader', 'val_dataloader')}


def test_pipeline_alignment_removed_replaced_repeated():
    from mmext.experiments.config_diff import diff_trees
    load = dict(type='LoadImageFromFile')
    pack = dict(type='PackDetInputs')
    a = dict(train_pipeline=[load, dict(type='Resize', scale=[8, 8]),
                             dict(type='RandomFlip', prob=0.5), pack])
    b = dict(train_pipeline=[load, dict(type='RandomResize', scale=[8, 8]),
                             dict(type='RandomFlip', prob=0.5,
                                  direction='vertical'), pack])
    changes, _ = diff_trees(a, b)
    assert [(c.key, c.kind, c.note) for c in changes] == [
        ('train_pipeline[RandomResize]', 'replaced',
         'Resize replaced by RandomResize'),
        ('train_pipeline[RandomFlip].direction', 'added', '')]
    b = dict(train_pipeline=[load, a['train_pipeline'][1], pack])
    changes, _ = diff_trees(a, b)
    assert [(c.key, c.kind, c.note, c.before) for c in changes] == [
        ('train_pipeline[RandomFlip]', 'removed',
         'RandomFlip removed (was after Resize)', dict(type='RandomFlip',
                                                      prob=0.5))]
    # a repeated type is told apart by its occurrence
    two = dict(p=[dict(type='Resize', scale=1), dict(type='Resize', scale=2)])
    three = dict(p=[dict(type='Resize', scale=1), dict(type='Resize', scale=3)])
    changes, _ = diff_trees(two, three)
    assert [c.key for c in changes] == ['p[Resize#2].scale']
    # hooks are pipelines too; a hook's name does not make it a loss
    hooks_a = dict(custom_hooks=[dict(type='MeanTeacherHook')])
    hooks_b = dict(custom_hooks=[dict(type='MeanTeacherHook'),
                                 dict(type='LossStabilityHook', window=100)])
    changes, _ = diff_trees(hooks_a, hooks_b)
    assert [(c.key, c.note, c.group) for c in changes] == [
        ('custom_hooks[LossStabilityHook]',
         'LossStabilityHook inserted after MeanTeacherHook', 'other')]


def test_soft_teacher_nested_pipeline_once_and_ablation_writes_copies(
        tmp_path):
    from mmengine.config import Config

    from mmext.experiments.ablation import write_ablation
    new = tmp_path / 'pmd.py'
    new.write_text(
        f'_base_ = [{DEMO_CONFIG!r}]\n'
        'sup_pipeline = _base_.sup_pipeline[:4] + '
        "[dict(type='PhotoMetricDistortion')] + _base_.sup_pipeline[4:]\n"
        'labeled_dataset = dict(_base_.labeled_dataset, '
        'pipeline=sup_pipeline)\n'
        'train_dataloader = dict(dataset=dict(datasets=[labeled_dataset, '
        '_base_.unlabeled_dataset]))\n')
    diff = diff_configs(DEMO_CONFIG, str(new))
    assert [(c.key, c.note) for c in diff.changes] == [
        ('sup_pipeline[PhotoMetricDistortion]',
         'PhotoMetricDistortion inserted after RandomFlip')]
    assert {al.same_as for al in diff.aliases} == {'sup_pipeline',
                                                   'labeled_dataset'}
    # the arm must carry the transform into the dataloader, not only into
    # the sup_pipeline variable
    manifest = write_ablation(DEMO_CONFIG, str(new), str(tmp_path / 'abl'))
    (arm,) = [a for a in manifest['arms'] if a['name'].startswith('only-')]
    used = Config.fromfile(arm['config']).train_dataloader.dataset.datasets[
        0].pipeline
    assert [t['type'] for t in used] == [
        t['type'] for t in Config.fromfile(str(new)).sup_pipeline]
    assert 'PhotoMetricDistortion' in [t['type'] for t in used]


# Ultralytics args.yaml as `yolo train` writes it (a subset of its keys):
# the user's localization exp002 -> exp003 (seed 003)
EXP002 = """task: pose
mode: train
model: yolo11s-pose.pt
data: data/localization.yaml
epochs: 150
batch: 64
imgsz: 640
name: exp002_improved
optimizer: auto
cos_lr: false
amp: true
lr0: 0.01
lrf: 0.01
momentum: 0.937
weight_decay: 0.0005
warmup_epochs: 3.0
box: 7.5
cls: 0.5
dfl: 1.5
pose: 15.0
kobj: 1.0
nbs: 64
conf: null
perspective: 0.0005
fliplr: 0.5
mosaic: 1.0
save_dir: runs/pose/exp002_improved
"""


def _ultralytics(tmp_path, folder, **changes):
    text = EXP002
    for key, value in changes.items():
        text = re.sub(rf'^{key}: .*$', f'{key}: {value}', text, flags=re.M)
    path = tmp_path / folder / 'args.yaml'
    path.parent.mkdir()
    path.write_text(text)
    return str(path)


def test_ultralytics_args_yaml(tmp_path):
    a = _ultralytics(tmp_path, 'exp002')
    b = _ultralytics(tmp_path, 'exp003', pose=20.0, batch=96,
                     perspective=0.001, cos_lr='true', name='exp003',
                     save_dir='runs/pose/exp003')
    diff = diff_configs(a, b)
    got = {c.key: (c.before, c.after, c.group) for c in diff.changes}
    assert got == {'batch': (64, 96, DATA), 'name': ('exp002_improved',
                                                     'exp003', 'other'),
                   'cos_lr': (False, True, OPTIM), 'pose': (15.0, 20.0, LOSS),
                   'perspective': (0.0005, 0.001, AUG),
                   'save_dir': ('runs/pose/exp002_improved',
                                'runs/pose/exp003', 'other')}
    rules = {r.rule: r for r in diff.risks}
    assert 'pose 15.0 -> 20.0' in rules['loss weights rebalanced'].reason
    # batch 64 = nbs: no accumulation either way, 64 -> 96 images per step
    assert 'images per optimizer step 64 -> 96' in rules[
        'batch size without LR scaling'].reason
    assert 'learning rate jump' not in rules and 'image size' not in rules

    # below nbs Ultralytics accumulates to ~64 images a step: nothing to scale
    c = _ultralytics(tmp_path, 'b32', batch=32)
    assert not [r for r in diff_configs(a, c).risks if r.rule.startswith(
        'batch')]
    auto = _ultralytics(tmp_path, 'auto', batch=-1)  # AutoBatch
    assert not [r for r in diff_configs(a, auto).risks if r.rule.startswith(
        'batch')]


def test_ultralytics_lr_x10_and_imgsz(tmp_path):
    a = _ultralytics(tmp_path, 'exp002')
    b = _ultralytics(tmp_path, 'lr', lr0=0.1, imgsz=1280)
    rules = {r.rule: r for r in diff_configs(a, b).risks}
    jump = rules['learning rate jump']
    assert jump.severity == 'high' and 'lr0 0.01 -> 0.1 (x10.00)' in jump.reason
    size = rules['image size']
    assert 'imgsz 640 -> 1280 (x2.00)' in size.reason and 'x4.0' in size.reason
    c = _ultralytics(tmp_path, 'lr3', lr0=0.003)  # x0.3
    (jump,) = [r for r in diff_configs(a, c).risks
               if r.rule == 'learning rate jump']
    assert jump.severity == 'medium'
    d = _ultralytics(tmp_path, 'lr2', lr0=0.02)
    assert not [r for r in diff_configs(a, d).risks
                if r.rule == 'learning rate jump']
