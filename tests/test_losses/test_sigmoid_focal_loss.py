"""SigmoidFocalLoss: equal to mmdet's FocalLoss, per-class params, gradients, RPN."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import FocalLoss
from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

from mmext.losses import SigmoidFocalLoss, sigmoid_focal_loss

register_all_modules(init_default_scope=False)


def _data(seed=0, n=64, c=5):
    torch.manual_seed(seed)
    return torch.randn(n, c) * 3, torch.randint(0, c + 1, (n,)), torch.rand(n)


@pytest.mark.parametrize('gamma,alpha', [(2.0, 0.25), (2.5, 0.75), (3.5, 0.75)])
def test_scalar_equals_mmdet_focal_loss(gamma, alpha):
    pred, target, weight = _data()
    for kwargs in (dict(), dict(weight=weight, avg_factor=17.0)):
        ours = SigmoidFocalLoss(gamma=gamma, alpha=alpha, loss_weight=2.0)(pred, target, **kwargs)
        ref = FocalLoss(gamma=gamma, alpha=alpha, loss_weight=2.0)(pred, target, **kwargs)
        assert torch.allclose(ours, ref, rtol=1e-6, atol=0)
    onehot = F.one_hot(target, 6)[:, :5].float()
    ours = sigmoid_focal_loss(pred, onehot, gamma=gamma, alpha=alpha, reduction='none')
    ref = py_sigmoid_focal_loss(pred, onehot, gamma=gamma, alpha=alpha, reduction='none')
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="mmcv's compiled sigmoid_focal_loss has no CPU kernel")
def test_scalar_equals_mmcv_compiled_op():
    from mmcv.ops import sigmoid_focal_loss as mmcv_op
    pred, target, _ = _data()
    pred, target = pred.cuda(), target.cuda()
    ref = mmcv_op(pred, target, 2.0, 0.25, None, 'none')
    ours = sigmoid_focal_loss(pred, target, gamma=2.0, alpha=0.25, reduction='none')
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_per_class_closed_form():
    gamma, alpha, cw = [1.0, 3.0], [0.9, 0.2], [1.0, 0.5]
    logits, labels = [[1.0, -2.0], [0.5, 0.3], [-1.0, 2.0]], [0, 2, 1]  # 2 = background
    loss = sigmoid_focal_loss(torch.tensor(logits, dtype=torch.float64), torch.tensor(labels),
                              gamma=gamma, alpha=alpha, class_weight=cw, reduction='none')
    for i, (row, t) in enumerate(zip(logits, labels)):
        for c, x in enumerate(row):
            p = 1 / (1 + math.exp(-x))
            y = 1.0 if t == c else 0.0
            p_t = p if y else 1 - p
            a_t = alpha[c] if y else 1 - alpha[c]
            expected = -cw[c] * a_t * (1 - p_t) ** gamma[c] * math.log(p_t)
            assert loss[i, c].item() == pytest.approx(expected, rel=1e-12)


def test_equal_per_class_params_equal_scalar():
    pred, target, weight = _data(1)
    scalar = sigmoid_focal_loss(pred, target, weight, gamma=2.5, alpha=0.75)
    listed = sigmoid_focal_loss(pred, target, weight, gamma=[2.5] * 5, alpha=[0.75] * 5)
    assert torch.allclose(scalar, listed, rtol=1e-7, atol=0)


def test_gamma0_without_alpha_is_bce_exactly():
    pred, target, _ = _data(2)
    onehot = F.one_hot(target, 6)[:, :5].float()
    ours = sigmoid_focal_loss(pred, target, gamma=0.0, alpha=None, reduction='none')
    assert torch.equal(ours, F.binary_cross_entropy_with_logits(pred, onehot, reduction='none'))


def test_gradcheck_and_analytical_gradient():
    torch.manual_seed(3)
    pred = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 3, 1])
    assert torch.autograd.gradcheck(
        lambda x: sigmoid_focal_loss(x, target, gamma=[1.5, 2.0, 3.0],
                                     alpha=[0.25, 0.5, 0.75], reduction='sum'), (pred,))
    # d/dx of -(1-p_t)^g log p_t for a positive (y=1, p_t = p):
    # (1-p)^g [g p log p - (1 - p)]
    g = 2.0
    loss = sigmoid_focal_loss(pred, target, gamma=g, alpha=None, reduction='sum')
    (auto,) = torch.autograd.grad(loss, pred)
    p = pred.detach().sigmoid()
    y = F.one_hot(target, 4)[:, :3].double()
    p_t = y * p + (1 - y) * (1 - p)
    d_pt = (1 - p_t) ** g * (g * p_t * torch.log(p_t) - (1 - p_t))  # dFL/dx_t, x_t = +-x
    assert torch.allclose(auto, d_pt * (2 * y - 1), atol=1e-12)


def test_gamma_below_one_finite_where_mmdet_gives_nan():
    x = torch.tensor([[20.0]], requires_grad=True)
    y = torch.tensor([[1.0]])
    sigmoid_focal_loss(x, y, gamma=0.5, alpha=0.25, reduction='sum').backward()
    assert torch.isfinite(x.grad).all()
    x_ref = torch.tensor([[20.0]], requires_grad=True)
    py_sigmoid_focal_loss(x_ref, y, gamma=0.5, alpha=0.25, reduction='sum').backward()
    assert torch.isnan(x_ref.grad).all()  # why mmext clamps 1 - p_t


def test_rpn_head_uses_one_sigmoid_channel():
    head = MODELS.build(dict(
        type='RPNHead', in_channels=8, feat_channels=8,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0],
                              strides=[4]),
        loss_cls=dict(type='SigmoidFocalLoss', use_sigmoid=True, gamma=2.5, alpha=0.75,
                      loss_weight=3.0)))
    assert head.use_sigmoid_cls and head.cls_out_channels == 1
    assert isinstance(head.loss_cls, SigmoidFocalLoss)
