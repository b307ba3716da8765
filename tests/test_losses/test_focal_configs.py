"""configs/focal/*: build, pass the config check, train 2 Soft Teacher iterations."""
import os

import pytest
import torch

from helpers import ROOT, tiny_semi_config
from mmext.checks.config_check import check_config, has_errors
from mmext.engine import build_runner
from mmext.losses import EqualizedFocalLoss, SigmoidFocalLoss, SoftmaxFocalLoss

FOCAL = os.path.join(ROOT, 'configs', 'focal', 'soft-teacher_faster-rcnn_tiny_demo_focal.py')
EFL_CB = os.path.join(ROOT, 'configs', 'focal', 'soft-teacher_faster-rcnn_tiny_demo_efl-cb.py')


@pytest.mark.parametrize('config,rpn_loss', [(FOCAL, SigmoidFocalLoss),
                                             (EFL_CB, EqualizedFocalLoss)])
def test_config_trains_with_matching_heads(config, rpn_loss, tiny_demo_root, tmp_path):
    assert not has_errors(check_config(config))
    cfg = tiny_semi_config(tiny_demo_root, str(tmp_path), max_iters=2, config=config)
    runner = build_runner(cfg)
    student = runner.model.student
    assert isinstance(student.rpn_head.loss_cls, rpn_loss)
    assert student.rpn_head.cls_out_channels == 1 and student.rpn_head.use_sigmoid_cls
    assert isinstance(student.roi_head.bbox_head.loss_cls, SoftmaxFocalLoss)
    assert student.roi_head.bbox_head.fc_cls.out_features == 6  # 5 classes + background
    runner.train()
    assert runner.iter == 2
    ckpt = torch.load(os.path.join(str(tmp_path), 'iter_2.pth'), weights_only=False)
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values()
               if torch.is_floating_point(v))
    if rpn_loss is EqualizedFocalLoss:
        # gradient statistics were collected in real training and checkpointed
        saved = ckpt['state_dict']['student.rpn_head.loss_cls.neg_grad']
        assert saved.sum() > 0
        assert torch.equal(saved, student.rpn_head.loss_cls.neg_grad.cpu())
