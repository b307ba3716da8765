r"""Softmax focal loss for R-CNN bbox heads (num_classes + 1 logits).

mmdet 3.3's ``FocalLoss`` is sigmoid-only. Put into a ``Shared2FCBBoxHead``
it trains the background column as an independent extra class, while the
head still predicts with a softmax and SoftTeacher reads ``scores[:, -1]``
(softmax background) as the weight of its negatives. This loss keeps the
softmax: training, the head's prediction path and SoftTeacher's background
score all use the same distribution.

For sample :math:`i` with label :math:`t_i` (background = ``num_classes``,
the last logit) and :math:`p_{i} = \mathrm{softmax}(x_i)`:

.. math::

    FL_i = - w_{t_i}\, \alpha_{t_i}\, (1 - p_{i,t_i})^{\gamma_{t_i}}
           \log p_{i,t_i}

Scalar ``alpha`` means :math:`\alpha` for every foreground class and
:math:`1 - \alpha` for background (the sigmoid focal loss convention: alpha
weights positives). With ``gamma=0``, ``alpha=None`` and no class weight the
loss is exactly cross-entropy.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor

from .base import FocalLossBase
from .utils import (MIN_ONE_MINUS_PT, check_per_class, match_weight_to_loss,
                    per_class_tensor)


def softmax_alpha_vector(alpha: Union[None, float, Sequence[float]],
                         num_logits: int, like: Tensor) -> Optional[Tensor]:
    """Per-logit alpha: a scalar becomes alpha (foreground) / 1-alpha (bg).

    Args:
        alpha: None, a scalar in [0, 1] or ``num_logits`` values.
        num_logits: num_classes + 1 (background last).
        like: Tensor giving dtype and device.
    """
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)):
        vec = torch.full((num_logits,), float(alpha), dtype=like.dtype,
                         device=like.device)
        vec[-1] = 1.0 - float(alpha)
        return vec
    return per_class_tensor('alpha', alpha, num_logits, like)


def softmax_focal_loss(pred: Tensor,
                       target: Tensor,
                       weight: Optional[Tensor] = None,
                       gamma: Union[float, Sequence[float]] = 2.0,
                       alpha: Union[None, float, Sequence[float]] = None,
                       class_weight: Optional[Sequence[float]] = None,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None,
                       ignore_index: int = -100) -> Tensor:
    """Softmax focal loss, see the module docstring for the formula.

    Args:
        pred: Logits ``(N, num_classes + 1)``, background last.
        target: Labels ``(N,)`` in ``[0, num_classes]``; ``ignore_index``
            (or any label outside that range) contributes zero.
        weight: Per-sample weight ``(N,)`` (mmdet's ``label_weights``);
            weight-0 samples contribute nothing.
        gamma: Focusing parameter, scalar or one per logit (>= 0).
        alpha: None, scalar (foreground alpha, background 1-alpha) or one
            value per logit.
        class_weight: One weight per logit, or None.
        reduction: 'none' (per-sample loss), 'mean' or 'sum'.
        avg_factor: Divide the sum by this instead of N for 'mean'.
        ignore_index: Label to ignore.

    Returns:
        The reduced loss; ``(N,)`` for reduction 'none'.
    """
    num_logits = pred.size(1)
    valid = (target != ignore_index) & (target >= 0) & (target < num_logits)
    safe_target = torch.where(valid, target, torch.zeros_like(target)).long()
    log_pt = F.log_softmax(pred, dim=1).gather(1, safe_target[:, None]).squeeze(1)
    loss = -log_pt
    if not (isinstance(gamma, (int, float)) and gamma == 0):
        gamma_t = per_class_tensor('gamma', gamma, num_logits, pred)[safe_target]
        # 1 - p_t through expm1: exact for confident samples where 1 - exp()
        # would round to 0.
        one_minus_pt = (-torch.expm1(log_pt)).clamp(min=MIN_ONE_MINUS_PT)
        loss = loss * one_minus_pt.pow(gamma_t)
    alpha_vec = softmax_alpha_vector(alpha, num_logits, pred)
    if alpha_vec is not None:
        loss = loss * alpha_vec[safe_target]
    if class_weight is not None:
        loss = loss * per_class_tensor('class_weight', class_weight, num_logits,
                                       pred)[safe_target]
    if not bool(valid.all()):
        loss = loss * valid.to(loss.dtype)
    weight = match_weight_to_loss(weight, loss)
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class SoftmaxFocalLoss(FocalLossBase):
    """Softmax focal loss for R-CNN bbox heads, a ``loss_cls`` for BBoxHead.

    It sets none of BBoxHead's ``custom_cls_channels`` / ``custom_activation``
    flags, so the head keeps ``num_classes + 1`` logits and predicts with a
    softmax, exactly the distribution this loss trains.

    Args:
        use_sigmoid: Must be False (kept for config symmetry with
            CrossEntropyLoss). Defaults to False.
        gamma: Focusing parameter, scalar or one per logit (background last).
            Defaults to 2.0.
        alpha: None (no alpha), a scalar in [0, 1] (foreground alpha,
            background 1 - alpha) or one value per logit. Defaults to None.
        class_weight: One weight per logit (background last), e.g. from
            :func:`mmext.losses.class_balanced_weights`. Defaults to None.
        reduction: 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
        ignore_index: Label ignored by the loss. Defaults to -100.
    """
    activation = 'softmax'

    def __init__(self,
                 use_sigmoid: bool = False,
                 gamma: Union[float, Sequence[float]] = 2.0,
                 alpha: Union[None, float, Sequence[float]] = None,
                 class_weight: Optional[Sequence[float]] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 ignore_index: int = -100) -> None:
        super().__init__(use_sigmoid, alpha, class_weight, reduction, loss_weight)
        check_per_class('gamma', gamma, lower=0.0)
        self.gamma = gamma
        self.ignore_index = ignore_index

    def compute(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                reduction: str, avg_factor: Optional[float]) -> Tensor:
        """Loss of logits ``(N, num_classes + 1)`` against labels ``(N,)``."""
        return softmax_focal_loss(
            pred, target, weight, gamma=self.gamma, alpha=self.alpha,
            class_weight=self.class_weight, reduction=reduction,
            avg_factor=avg_factor, ignore_index=self.ignore_index)
