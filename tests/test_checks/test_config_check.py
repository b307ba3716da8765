"""check_config: the user's focal setup is flagged, the demo config is clean."""
import copy
import importlib.util
import json
import os

import pytest
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from helpers import DEMO_CONFIG, ROOT
from mmext.checks.config_check import check_config, has_errors
from mmext.utils import run_cli

register_all_modules(init_default_scope=False)

# The user's changes (seed 004) on top of the demo config.
USER_SETUP = """
_base_ = [{base!r}]
model = dict(
    detector=dict(
        rpn_head=dict(
            anchor_generator=dict(ratios=[0.2, 0.35, 0.45, 0.55, 0.65, 1.0, 2.0]),
            loss_cls=dict(_delete_=True, type='FocalLoss', gamma=2.5, alpha=0.75,
                          loss_weight=3.0)),
        roi_head=dict(bbox_head=dict(loss_cls=dict(
            _delete_=True, type='FocalLoss', gamma=3.5, alpha=0.75, loss_weight=2.5)))),
    semi_train_cfg=dict(pseudo_label_initial_score_thr=0.4, cls_pseudo_thr=0.35,
                        rpn_pseudo_thr=0.35))
"""


@pytest.fixture(scope='module')
def demo_cfg():
    return Config.fromfile(DEMO_CONFIG)


@pytest.fixture
def user_config_file(tmp_path):
    path = tmp_path / 'user_setup.py'
    path.write_text(USER_SETUP.format(base=DEMO_CONFIG))
    return str(path)


def _tool():
    spec = importlib.util.spec_from_file_location(
        'check_config_tool', os.path.join(ROOT, 'tools', 'check_config.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(findings, severity, check=None):
    return {f.key for f in findings
            if f.severity == severity and (check is None or f.check == check)}


def test_user_focal_setup_is_flagged(user_config_file):
    findings = check_config(user_config_file)
    assert _keys(findings, 'error', 'loss-activation') == {
        'model.detector.rpn_head.loss_cls', 'model.detector.roi_head.bbox_head.loss_cls'}
    rcnn = [f for f in findings if f.key.endswith('bbox_head.loss_cls')][0]
    assert 'scores[:, -1]' in rcnn.message  # it is a Soft Teacher
    assert _keys(findings, 'warning', 'pseudo-thresholds') == {
        'model.semi_train_cfg.rpn_pseudo_thr', 'model.semi_train_cfg.cls_pseudo_thr'}
    # what the findings claim, seen in the heads mmdet really builds
    det = Config.fromfile(user_config_file).model.detector
    rpn = MODELS.build(det.rpn_head)
    assert not rpn.use_sigmoid_cls and rpn.cls_out_channels == 2  # softmax channels
    bbox = MODELS.build(det.roi_head.bbox_head)
    assert bbox.fc_cls.out_features == det.roi_head.bbox_head.num_classes + 1
    assert not bbox.custom_activation  # predicts with a softmax


def test_demo_and_focal_configs_have_no_errors(demo_cfg):
    assert not has_errors(check_config(demo_cfg))
    for name in ('soft-teacher_faster-rcnn_tiny_demo_focal.py',
                 'soft-teacher_faster-rcnn_tiny_demo_efl-cb.py'):
        findings = check_config(os.path.join(ROOT, 'configs', 'focal', name))
        assert not _keys(findings, 'error'), findings


def test_num_classes_mismatches(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.detector.roi_head.bbox_head.num_classes = 4
    assert 'model.detector.roi_head.bbox_head.num_classes' in _keys(
        check_config(cfg), 'error', 'num-classes')
    cfg = copy.deepcopy(demo_cfg)
    cfg.val_dataloader.dataset.metainfo = dict(classes=('a', 'b'))
    assert 'dataset.metainfo' in _keys(check_config(cfg), 'error', 'num-classes')
    cfg = copy.deepcopy(demo_cfg)
    for ds in cfg.train_dataloader.dataset.datasets:
        ds.pop('metainfo')
    cfg.val_dataloader.dataset.pop('metainfo')
    # no metainfo -> CocoDataset's 80 classes, the head has 5
    found = [f for f in check_config(cfg) if f.check == 'num-classes']
    assert any('80 classes' in f.message for f in found)


def test_per_class_list_lengths(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.detector.roi_head.bbox_head.loss_cls = dict(
        type='SoftmaxFocalLoss', gamma=[2.0] * 5, alpha=[0.5] * 6)
    cfg.model.detector.rpn_head.loss_cls = dict(
        type='SigmoidFocalLoss', use_sigmoid=True, alpha=[0.25, 0.25])
    keys = _keys(check_config(cfg), 'error', 'per-class-length')
    assert keys == {'model.detector.roi_head.bbox_head.loss_cls.gamma',
                    'model.detector.rpn_head.loss_cls.alpha'}


def test_loss_parameter_ranges(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.detector.rpn_head.loss_cls = dict(
        type='FocalLoss', use_sigmoid=True, gamma=0.5, alpha=1.5)
    cfg.model.detector.roi_head.bbox_head.loss_cls = dict(
        type='SoftmaxFocalLoss', gamma=-1.0, loss_weight=0.0)
    findings = check_config(cfg)
    assert _keys(findings, 'error', 'loss-params') == {
        'model.detector.rpn_head.loss_cls.alpha',
        'model.detector.roi_head.bbox_head.loss_cls.gamma'}
    assert _keys(findings, 'warning', 'loss-params') == {
        'model.detector.rpn_head.loss_cls.gamma',
        'model.detector.roi_head.bbox_head.loss_cls.loss_weight'}


def test_anchor_checks(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.detector.rpn_head.anchor_generator.ratios = [0.0, 0.5, 0.5, 20.0]
    cfg.model.detector.roi_head.bbox_roi_extractor.featmap_strides = [8, 16, 32, 64]
    findings = [f for f in check_config(cfg) if f.check == 'anchors']
    messages = ' | '.join(f.message for f in findings)
    assert [f.severity for f in findings].count('error') == 2  # ratio 0, strides
    assert 'ratio 20.0' in messages and 'repeated' in messages


def test_pseudo_threshold_checks(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.semi_train_cfg.update(pseudo_label_initial_score_thr=0.3,
                                    cls_pseudo_thr=1.2, rpn_pseudo_thr=0.5,
                                    reg_pseudo_thr=-0.1)
    cfg.model.detector.test_cfg.rcnn.score_thr = 0.4
    findings = check_config(cfg)
    assert _keys(findings, 'error', 'pseudo-thresholds') == {
        'model.semi_train_cfg.cls_pseudo_thr', 'model.semi_train_cfg.reg_pseudo_thr'}
    # the teacher outputs nothing below 0.4, so the 0.3 initial threshold does nothing
    assert 'model.semi_train_cfg.pseudo_label_initial_score_thr' in _keys(
        findings, 'warning', 'pseudo-thresholds')


def test_cli_exit_codes_table_and_json(user_config_file, tmp_path, capsys):
    tool = _tool()
    out = tmp_path / 'findings.json'
    assert tool.main([user_config_file, '--json', str(out)]) == 1
    stdout = capsys.readouterr().out
    assert 'severity' in stdout.splitlines()[1] and '2 error(s), 4 warning(s)' in stdout
    data = json.loads(out.read_text())
    assert data['errors'] == 2 and len(data['findings']) == 6
    assert tool.main([DEMO_CONFIG]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tool.main, [str(tmp_path / 'missing.py')])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_focal_settings_outside_published_ssod(user_config_file, demo_cfg):
    findings = check_config(user_config_file)
    flagged = {f.key: f for f in findings if f.check == 'focal-settings'}
    # the user's gamma 3.5 / weight 2.5 (R-CNN) and gamma 2.5 / weight 3 (RPN)
    assert set(flagged) == {'model.detector.rpn_head.loss_cls',
                            'model.detector.roi_head.bbox_head.loss_cls'}
    msg = flagged['model.detector.roi_head.bbox_head.loss_cls'].message
    assert 'gamma 3.5 > 2' in msg and 'loss_weight 2.5 > 2' in msg
    assert 'Unbiased Teacher' in msg and 'measured' in msg
    assert all(f.severity == 'warning' for f in flagged.values())
    # Unbiased Teacher's own setting is not flagged
    cfg = copy.deepcopy(demo_cfg)
    cfg.model.detector.roi_head.bbox_head.loss_cls = dict(
        type='SoftmaxFocalLoss', gamma=1.5, loss_weight=1.0)
    assert not [f for f in check_config(cfg) if f.check == 'focal-settings']


def test_config_findings_are_check_results_on_one_scale():
    """One result type and one severity scale for every check: a config
    finding is a one-item CheckResult whose status is fail or warn, and
    check_config still writes its own words."""
    from mmext.checks.check_result import (CheckResult, make_check,
                                           status_counts, worst_status)
    from mmext.checks.config_check import ConfigFinding
    error = ConfigFinding('error', 'anchors', 'model.rpn_head', 'ratio 0')
    warning = ConfigFinding('warning', 'loss-params', 'model.x', 'big')
    assert isinstance(error, CheckResult) and error.status == 'fail'
    assert warning.status == 'warn' and (warning.count, warning.total) == (1, 1)
    assert error.to_dict() == dict(severity='error', check='anchors',
                                   key='model.rpn_head', message='ratio 0')
    dataset_row = make_check('image missing', 'val', [], 10)
    assert worst_status([dataset_row, warning]) == 'warn'
    assert worst_status([dataset_row, warning, error]) == 'fail'
    assert status_counts([dataset_row, warning, error]) == dict(
        **{'pass': 1, 'info': 0, 'warn': 1, 'fail': 1})
    with pytest.raises(ValueError):
        ConfigFinding('fatal', 'x', 'y', 'z')
