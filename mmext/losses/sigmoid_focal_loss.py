r"""Sigmoid focal loss with per-class alpha and gamma, for RPN and dense heads.

A drop-in for mmdet's ``FocalLoss`` (same arguments; equal values when alpha
and gamma are scalars) that also takes one alpha / gamma / weight per class.
For logit :math:`x_{ic}`, :math:`p = \sigma(x)` and binary target
:math:`y_{ic}`:

.. math::

    FL_{ic} = - w_c\, \alpha_{t}\, (1 - p_t)^{\gamma_c} \log p_t, \quad
    p_t = y p + (1-y)(1-p), \quad
    \alpha_t = y \alpha_c + (1-y)(1-\alpha_c)

Dense heads read ``use_sigmoid`` from the *config* dict to size their output
(``num_classes`` channels and a sigmoid at predict time), so write
``use_sigmoid=True`` in the config, as for mmdet's FocalLoss.
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


def binary_targets(pred: Tensor, target: Tensor) -> Tensor:
    """Labels ``(N,)`` (background = C) or one-hot ``(N, C)`` -> ``(N, C)``.

    Args:
        pred: Logits ``(N, C)``.
        target: Labels in ``[0, C]`` or a (soft) one-hot matrix.
    """
    if target.dim() == pred.dim():
        return target.type_as(pred)
    num_classes = pred.size(1)
    labels = target.long().clamp(min=0, max=num_classes)
    labels = torch.where(target < 0, torch.full_like(labels, num_classes), labels)
    return F.one_hot(labels, num_classes=num_classes + 1)[:, :num_classes].type_as(pred)


def sigmoid_focal_loss(pred: Tensor,
                       target: Tensor,
                       weight: Optional[Tensor] = None,
                       gamma: Union[float, Sequence[float], Tensor] = 2.0,
                       alpha: Union[None, float, Sequence[float]] = 0.25,
                       class_weight: Union[None, Sequence[float], Tensor] = None,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None) -> Tensor:
    """Sigmoid focal loss, see the module docstring for the formula.

    Args:
        pred: Logits ``(N, C)``.
        target: Labels ``(N,)`` in ``[0, C]`` (C = background) or ``(N, C)``.
        weight: ``(N,)``, ``(N, C)`` or flattened ``(N * C,)`` weight.
        gamma: Focusing parameter, scalar or one per class (>= 0).
        alpha: Positive-class weight, scalar or one per class; None = 1 for
            positives and negatives.
        class_weight: One multiplier per class, or None.
        reduction: 'none' (element-wise ``(N, C)``), 'mean' or 'sum'.
        avg_factor: Divide the sum by this instead of ``N * C`` for 'mean'.
    """
    num_classes = pred.size(1)
    y = binary_targets(pred, target)
    loss = F.binary_cross_entropy_with_logits(pred, y, reduction='none')
    gamma_vec = per_class_tensor('gamma', gamma, num_classes, pred)
    if bool((gamma_vec != 0).any()):
        # 1 - p_t = y * sigmoid(-x) + (1 - y) * sigmoid(x), without 1 - p
        # rounding to 0 for saturated logits.
        one_minus_pt = y * torch.sigmoid(-pred) + (1 - y) * torch.sigmoid(pred)
        loss = loss * one_minus_pt.clamp(min=MIN_ONE_MINUS_PT).pow(gamma_vec)
    if alpha is not None:
        alpha_vec = per_class_tensor('alpha', alpha, num_classes, pred)
        loss = loss * (alpha_vec * y + (1 - alpha_vec) * (1 - y))
    if class_weight is not None:
        loss = loss * per_class_tensor('class_weight', class_weight,
                                       num_classes, pred)
    weight = match_weight_to_loss(weight, loss)
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class SigmoidFocalLoss(FocalLossBase):
    """Sigmoid focal loss with per-class alpha and gamma (RPN, dense heads).

    Args:
        use_sigmoid: Must be True; also write it in the config so the head
            sizes its output for a sigmoid. Defaults to True.
        gamma: Focusing parameter, scalar or one per class. Defaults to 2.0.
        alpha: Positive weight, scalar or one per class in [0, 1]; None
            disables it. Defaults to 0.25.
        class_weight: One multiplier per class. Defaults to None.
        reduction: 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
        activated: Accepted for mmdet FocalLoss compatibility; must be False
            (the input is logits). Defaults to False.
    """
    activation = 'sigmoid'

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: Union[float, Sequence[float]] = 2.0,
                 alpha: Union[None, float, Sequence[float]] = 0.25,
                 class_weight: Optional[Sequence[float]] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 activated: bool = False) -> None:
        super().__init__(use_sigmoid, alpha, class_weight, reduction, loss_weight)
        if activated:
            raise ValueError('SigmoidFocalLoss: activated=True is not supported')
        check_per_class('gamma', gamma, lower=0.0)
        self.gamma = gamma

    def compute(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                reduction: str, avg_factor: Optional[float]) -> Tensor:
        """Loss of logits ``(N, C)`` against labels ``(N,)`` or ``(N, C)``."""
        return sigmoid_focal_loss(
            pred, target, weight, gamma=self.gamma, alpha=self.alpha,
            class_weight=self.class_weight, reduction=reduction,
            avg_factor=avg_factor)
