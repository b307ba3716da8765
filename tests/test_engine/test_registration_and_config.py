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


LEAF_IMPORT_CHECK = r'''
import sys
from mmext.utils.leaf_import import import_leaf
leaf = import_leaf('mmdet.models.task_modules.prior_generators.anchor_generator',
                   skip='mmdet.models')
assert 'mmdet.models' not in sys.modules, 'the package __init__ ran'
assert 'seaborn' not in sys.modules
import mmdet.models  # the real package afterwards: no double registration
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.registry import TASK_UTILS
assert AnchorGenerator is leaf.AnchorGenerator
gen = TASK_UTILS.build(dict(type='AnchorGenerator', strides=[8],
                            ratios=[0.5, 2.0], scales=[4]))
assert type(gen) is AnchorGenerator
assert mmdet.models.SoftTeacher is not None
print('ok')
'''


def test_import_leaf_skips_the_package_init_and_keeps_registration():
    """anchor_fit builds mmdet's AnchorGenerator without mmdet.models'
    __init__ (2-3 s); the package still imports and registers normally
    afterwards. A fresh interpreter: this one has mmdet.models already."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, MMEXT_NO_REGISTER='1')
    out = subprocess.run([sys.executable, '-c', LEAF_IMPORT_CHECK], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == 'ok'


def test_import_leaf_rejects_a_package_not_above_the_module():
    import pytest

    from mmext.utils.leaf_import import import_leaf
    with pytest.raises(ImportError):
        import_leaf('mmdet.structures.bbox', skip='mmdet.models')
