"""SoftmaxFocalLoss: closed form, cross-entropy limit, gradients, BBoxHead."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import CrossEntropyLoss
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

from mmext.losses import SoftmaxFocalLoss, softmax_focal_loss

register_all_modules(init_default_scope=False)


def closed_form(logits, labels, gamma, alpha_vec=None, class_weight=None):
    """FL_i = -w_t alpha_t (1 - p_t)^gamma_t log p_t with plain Python math."""
    out = []
    for row, t in zip(logits, labels):
        z = [math.exp(v) for v in row]
        p_t = z[t] / sum(z)
        g = gamma[t] if isinstance(gamma, list) else gamma
        a = alpha_vec[t] if alpha_vec else 1.0
        w = class_weight[t] if class_weight else 1.0
        out.append(-w * a * (1 - p_t) ** g * math.log(p_t))
    return out


LOGITS = [[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 1.5], [-0.5, 3.0, 0.0, 0.2]]
LABELS = [0, 3, 2]  # 3 = background (num_classes=3)


def test_hand_computed_case_scalar_alpha():
    pred = torch.tensor(LOGITS, dtype=torch.float64)
    target = torch.tensor(LABELS)
    loss = softmax_focal_loss(pred, target, gamma=2.0, alpha=0.75, reduction='none')
    # scalar alpha: 0.75 for foreground logits, 0.25 for background
    expected = closed_form(LOGITS, LABELS, 2.0, alpha_vec=[0.75, 0.75, 0.75, 0.25])
    assert loss.tolist() == pytest.approx(expected, rel=1e-12)
    mean = softmax_focal_loss(pred, target, gamma=2.0, alpha=0.75)
    assert mean.item() == pytest.approx(sum(expected) / 3, rel=1e-12)
    avg = softmax_focal_loss(pred, target, gamma=2.0, alpha=0.75, avg_factor=7.0)
    # mmdet's weight_reduce_loss divides by avg_factor + float32 eps
    assert avg.item() == pytest.approx(sum(expected) / (7 + 1.1920929e-07), rel=1e-12)


def test_per_class_gamma_alpha_and_class_weight():
    gamma, alpha, cw = [1.0, 2.5, 0.5, 3.0], [0.6, 0.7, 0.8, 0.1], [1.0, 2.0, 0.5, 1.5]
    loss = softmax_focal_loss(torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS),
                              gamma=gamma, alpha=alpha, class_weight=cw, reduction='none')
    assert loss.tolist() == pytest.approx(closed_form(LOGITS, LABELS, gamma, alpha, cw), rel=1e-12)


def test_gamma0_without_alpha_is_cross_entropy_exactly():
    torch.manual_seed(0)
    pred = torch.randn(50, 6) * 4
    target = torch.randint(0, 6, (50,))
    weight = torch.rand(50)
    ours = softmax_focal_loss(pred, target, gamma=0.0, reduction='none')
    assert torch.equal(ours, F.cross_entropy(pred, target, reduction='none'))
    mmdet_ce = CrossEntropyLoss(use_sigmoid=False)
    assert torch.equal(SoftmaxFocalLoss(gamma=0.0)(pred, target, weight, avg_factor=13.0),
                       mmdet_ce(pred, target, weight, avg_factor=13.0))


def test_equal_per_class_params_equal_scalar():
    torch.manual_seed(1)
    pred, target = torch.randn(40, 5), torch.randint(0, 5, (40,))
    scalar = softmax_focal_loss(pred, target, gamma=2.5, alpha=0.75, reduction='none')
    listed = softmax_focal_loss(pred, target, gamma=[2.5] * 5,
                                alpha=[0.75] * 4 + [0.25], reduction='none')
    assert torch.allclose(scalar, listed, rtol=0, atol=1e-7)


def test_weight_zero_samples_ignored():
    torch.manual_seed(2)
    pred = torch.randn(6, 4, requires_grad=True)
    target = torch.tensor([0, 1, 3, 3, 2, 1])
    weight = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    loss = softmax_focal_loss(pred, target, weight, gamma=2.0, alpha=0.25, reduction='sum')
    loss.backward()
    assert pred.grad[weight == 0].abs().max() == 0
    kept = weight > 0
    alone = softmax_focal_loss(pred[kept], target[kept], gamma=2.0, alpha=0.25, reduction='sum')
    assert loss.item() == pytest.approx(alone.item(), rel=1e-6)


def test_gradcheck_and_analytical_gradient():
    torch.manual_seed(3)
    pred = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 3, 0, 1, 2])

    def fn(x):
        return softmax_focal_loss(x, target, gamma=[1.5, 2.0, 3.5, 2.5],
                                  alpha=0.75, reduction='sum')
    assert torch.autograd.gradcheck(fn, (pred,))
    # dFL/dz_k = alpha_t [gamma (1-p)^(gamma-1) p log p - (1-p)^gamma] (delta_kt - p_k)
    gamma = 2.0
    loss = softmax_focal_loss(pred, target, gamma=gamma, reduction='sum')
    (auto,) = torch.autograd.grad(loss, pred)
    p = pred.detach().softmax(1)
    p_t = p[torch.arange(8), target]
    coef = gamma * (1 - p_t) ** (gamma - 1) * p_t * torch.log(p_t) - (1 - p_t) ** gamma
    onehot = F.one_hot(target, 4).double()
    assert torch.allclose(auto, coef[:, None] * (onehot - p), atol=1e-12)


def test_gamma_below_one_has_finite_gradient_when_saturated():
    pred = torch.tensor([[40.0, 0.0, 0.0]], requires_grad=True)
    loss = softmax_focal_loss(pred, torch.tensor([0]), gamma=0.5, reduction='sum')
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_bad_arguments_rejected():
    with pytest.raises(ValueError):
        SoftmaxFocalLoss(use_sigmoid=True)
    with pytest.raises(ValueError):
        SoftmaxFocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match='3 entries'):
        softmax_focal_loss(torch.zeros(2, 4), torch.tensor([0, 1]), gamma=[1.0, 2.0, 3.0])


def test_in_shared2fc_bbox_head_train_and_predict_agree():
    """A real Shared2FCBBoxHead: loss = closed form; predict scores = softmax."""
    torch.manual_seed(4)
    num_classes = 3
    head = MODELS.build(dict(
        type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, roi_feat_size=2,
        num_classes=num_classes,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        reg_class_agnostic=False,
        loss_cls=dict(type='SoftmaxFocalLoss', gamma=3.5, alpha=0.75, loss_weight=2.5),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)))
    head.init_weights()
    assert head.fc_cls.out_features == num_classes + 1
    n = 7
    cls_score, bbox_pred = head(torch.randn(n, 4, 2, 2))
    rois = torch.cat([torch.zeros(n, 1), torch.tensor([[10.0, 10.0, 50.0, 60.0]]).repeat(n, 1)], 1)
    labels = torch.tensor([0, 1, 2, 3, 3, 3, 1])
    label_weights = torch.tensor([1.0, 1.0, 1.0, 0.3, 0.0, 0.9, 1.0])  # SoftTeacher-style
    losses = head.loss(cls_score, bbox_pred, rois, labels, label_weights,
                       torch.zeros(n, 4), torch.zeros(n, 4))
    per_sample = closed_form(cls_score.tolist(), labels.tolist(), 3.5, [0.75] * 3 + [0.25])
    expected = 2.5 * sum(w * v for w, v in zip(label_weights.tolist(), per_sample)) / 6
    assert losses['loss_cls'].item() == pytest.approx(expected, rel=1e-5)
    # predict path with rcnn_test_cfg=None: what SoftTeacher reads as scores[:, -1]
    results = head.predict_by_feat(
        rois=(rois,), cls_scores=(cls_score,), bbox_preds=(bbox_pred,),
        batch_img_metas=[dict(img_shape=(100, 100), scale_factor=(1.0, 1.0))],
        rcnn_test_cfg=None, rescale=False)
    assert torch.allclose(results[0].scores, F.softmax(cls_score, dim=-1), atol=1e-6)
