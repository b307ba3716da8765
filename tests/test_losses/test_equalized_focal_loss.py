"""EqualizedFocalLoss: formula, gradient statistics, ranks, save/load."""
import math
import os
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

from mmext.losses import EqualizedFocalLoss, sigmoid_focal_loss

register_all_modules(init_default_scope=False)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import efl_dist_worker  # noqa: E402


def _batch(seed=0, n=20, c=3):
    torch.manual_seed(seed)
    labels = torch.randint(0, c + 1, (n,))
    return torch.randn(n, c, dtype=torch.float64) * 2, labels


def test_before_any_gradient_it_is_the_focal_loss_with_gamma_b():
    pred, target = _batch()
    efl = EqualizedFocalLoss(num_classes=3, gamma_b=2.0, scale_factor=8.0, alpha=0.25)
    assert torch.equal(efl.focusing_factors(), torch.full((3,), 2.0, dtype=torch.float64))
    expected = sigmoid_focal_loss(pred, target, gamma=2.0, alpha=0.25)
    assert torch.allclose(efl(pred, target), expected, rtol=1e-12)


def test_backward_hook_accumulates_gradient_statistics_and_sets_gamma():
    pred, target = _batch(1)
    efl = EqualizedFocalLoss(num_classes=3, gamma_b=2.0, scale_factor=8.0, alpha=0.25,
                             reduction='sum').train()
    x = pred.clone().requires_grad_(True)
    efl(x, target).backward()
    # independent: autograd of the pure focal loss (gamma_b, weight 1)
    x_ref = pred.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(
        sigmoid_focal_loss(x_ref, target, gamma=2.0, alpha=0.25, reduction='sum'), x_ref)
    y = torch.nn.functional.one_hot(target, 4)[:, :3].double()
    pos, neg = (grad.abs() * y).sum(0), (grad.abs() * (1 - y)).sum(0)
    assert torch.allclose(efl.pos_grad, pos, rtol=1e-12)
    assert torch.allclose(efl.neg_grad, neg, rtol=1e-12)
    ratio = (pos / (neg + 1e-10)).clamp(0, 1)
    assert torch.allclose(efl.pos_neg, ratio, rtol=1e-12)
    # next call: gamma_j = 2 + 8 (1 - g_j), weighting gamma_j / 2, by hand
    gammas = [2.0 + 8.0 * (1 - g) for g in ratio.tolist()]
    assert efl.focusing_factors().tolist() == pytest.approx(gammas, rel=1e-12)
    loss = efl(pred, target, reduction_override='none')
    for i in range(pred.shape[0]):
        for c in range(3):
            p = 1 / (1 + math.exp(-pred[i, c].item()))
            is_pos = target[i].item() == c
            p_t = p if is_pos else 1 - p
            a_t = 0.25 if is_pos else 0.75
            want = -(gammas[c] / 2.0) * a_t * (1 - p_t) ** gammas[c] * math.log(p_t)
            assert loss[i, c].item() == pytest.approx(want, rel=1e-10)


def test_eval_mode_and_no_grad_do_not_update():
    pred, target = _batch(2)
    efl = EqualizedFocalLoss(num_classes=3).eval()
    x = pred.clone().requires_grad_(True)
    efl(x, target).backward()
    assert efl.pos_grad.abs().sum() == 0 and efl.neg_grad.abs().sum() == 0


def test_statistics_summed_over_two_gloo_ranks(tmp_path):
    """2 processes with a DDP model == one process on the concatenated batches."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, 'efl_dist_worker.py'),
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    single = efl_dist_worker.single_process_buffers()
    assert single['pos_neg'].min() < 0.99  # statistics moved off their start
    for name in ('pos_grad', 'neg_grad', 'pos_neg'):
        for r in ranks:
            assert torch.allclose(r[name], single[name], rtol=1e-6), name


def test_statistics_in_state_dict_survive_save_and_load(tmp_path):
    def rpn_head():
        return MODELS.build(dict(
            type='RPNHead', in_channels=4, feat_channels=4,
            anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[1.0],
                                  strides=[4]),
            loss_cls=dict(type='EqualizedFocalLoss', use_sigmoid=True, num_classes=1)))
    head = rpn_head().train()
    logits = torch.randn(30, 1, requires_grad=True)
    head.loss_cls(logits, torch.randint(0, 2, (30,))).backward()
    state = head.state_dict()
    assert {'loss_cls.pos_grad', 'loss_cls.neg_grad', 'loss_cls.pos_neg'} <= set(state)
    torch.save(state, tmp_path / 'head.pth')
    fresh = rpn_head()
    assert not torch.equal(fresh.loss_cls.pos_neg, head.loss_cls.pos_neg)
    fresh.load_state_dict(torch.load(tmp_path / 'head.pth'))
    for name in ('pos_grad', 'neg_grad', 'pos_neg'):
        assert torch.equal(getattr(fresh.loss_cls, name), getattr(head.loss_cls, name))
    assert torch.equal(fresh.loss_cls.focusing_factors(), head.loss_cls.focusing_factors())


def test_bad_arguments_rejected():
    with pytest.raises(ValueError):
        EqualizedFocalLoss(num_classes=3, gamma_b=0.0)
    with pytest.raises(ValueError):
        EqualizedFocalLoss(num_classes=3, class_weight=[1.0, 1.0])
    with pytest.raises(ValueError, match='num_classes'):
        EqualizedFocalLoss(num_classes=3)(torch.zeros(2, 4), torch.tensor([0, 1]))
