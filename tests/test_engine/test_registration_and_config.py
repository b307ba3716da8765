"""import mmext registers into mmdet's registries; config helpers find datasets."""
from mmengine.config import Config

from helpers import DEMO_CONFIG
from mmext.engine import prepare_config
from mmext.utils.config import (dataset_ann_path, detector_cfg, set_data_root,
                                train_dataset_cfg)


def test_custom_imports_registers_the_runner():
    from mmengine.registry import RUNNERS
    cfg = Config.fromfile(DEMO_CONFIG)  # processes custom_imports=['mmext']
    assert cfg.custom_imports['imports'] == ['mmext']
    assert RUNNERS.get('TrustedResumeRunner') is not None


def test_demo_config_inherits_mmdet_soft_teacher():
    cfg = Config.fromfile(DEMO_CONFIG)
    assert cfg.model.type == 'SoftTeacher'
    assert cfg.val_cfg.type == 'TeacherStudentValLoop'
    assert cfg.train_dataloader.sampler.type == 'GroupMultiSourceSampler'
    assert any(h.type == 'MeanTeacherHook' for h in cfg.custom_hooks)
    det = detector_cfg(cfg.model)
    assert det.roi_head.bbox_head.num_classes == 5
    assert det.backbone.init_cfg is None  # nothing to download
    assert cfg.val_evaluator.classwise is True


def test_set_data_root_moves_datasets_and_evaluator(tmp_path):
    cfg = Config.fromfile(DEMO_CONFIG)
    set_data_root(cfg, str(tmp_path))
    root = str(tmp_path) + '/'
    for ds in cfg.train_dataloader.dataset.datasets:
        assert ds.data_root == root
    assert cfg.val_dataloader.dataset.data_root == root
    assert cfg.val_evaluator.ann_file == root + 'annotations/val.json'
    assert dataset_ann_path(train_dataset_cfg(cfg)) == root + 'annotations/train_labeled.json'


def test_max_iters_rescales_the_schedule():
    cfg = Config.fromfile(DEMO_CONFIG)
    old = cfg.train_cfg.max_iters
    milestone = cfg.param_scheduler[1].milestones[0]
    prepare_config(cfg, max_iters=old // 2)
    assert cfg.train_cfg.max_iters == old // 2
    assert cfg.param_scheduler[1].end == old // 2
    assert cfg.param_scheduler[1].milestones == [milestone // 2]
