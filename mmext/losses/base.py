"""The call contract the mmext focal losses share with mmdet's losses.

mmdet heads call ``loss_cls(pred, target, weight, avg_factor=...,
reduction_override=...)`` and read ``use_sigmoid`` / ``loss_weight``; this
base class holds that plumbing once, so each loss module only states its
formula in :meth:`FocalLossBase.compute`.
"""
from typing import Optional, Sequence, Union

import torch.nn as nn
from torch import Tensor

from .utils import check_per_class

REDUCTIONS = ('none', 'mean', 'sum')


class FocalLossBase(nn.Module):
    """Validated common arguments and mmdet's ``forward`` signature.

    Args:
        use_sigmoid: Must agree with the subclass's ``activation``.
        alpha: Scalar or per-class alpha in [0, 1], or None.
        class_weight: Per-class multipliers (>= 0), or None.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: Multiplier of the loss.
    """
    #: 'sigmoid' or 'softmax': what the loss trains (read by the config check).
    activation = ''

    def __init__(self,
                 use_sigmoid: bool,
                 alpha: Union[None, float, Sequence[float]],
                 class_weight: Optional[Sequence[float]],
                 reduction: str,
                 loss_weight: float) -> None:
        super().__init__()
        name = type(self).__name__
        if bool(use_sigmoid) != (self.activation == 'sigmoid'):
            other = 'SoftmaxFocalLoss' if self.activation == 'sigmoid' else 'SigmoidFocalLoss'
            raise ValueError(f'{name}: use_sigmoid={use_sigmoid} does not match its '
                             f'{self.activation} activation; use mmext {other}')
        if reduction not in REDUCTIONS:
            raise ValueError(f'{name}: unknown reduction {reduction!r}')
        check_per_class('alpha', alpha, lower=0.0, upper=1.0)
        check_per_class('class_weight', class_weight, lower=0.0)
        self.use_sigmoid = bool(use_sigmoid)
        self.alpha = alpha
        self.class_weight = class_weight
        self.reduction = reduction
        self.loss_weight = loss_weight

    def compute(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                reduction: str, avg_factor: Optional[float]) -> Tensor:
        """The loss before ``loss_weight``; implemented by each loss."""
        raise NotImplementedError

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """mmdet's loss call: ``loss_weight * compute(...)``.

        Args:
            pred: Logits ``(N, C)``.
            target: Labels ``(N,)`` (background = the last class index) or,
                for sigmoid losses, a one-hot ``(N, C)``.
            weight: Sample-wise (or element-wise) weight; weight-0 samples
                contribute nothing.
            avg_factor: Normaliser for 'mean' instead of the element count.
            reduction_override: 'none', 'mean' or 'sum' for this call.
            **kwargs: Ignored (e.g. ``ignore_index`` that BBoxHead may pass).
        """
        assert reduction_override in (None,) + REDUCTIONS
        reduction = reduction_override or self.reduction
        return self.loss_weight * self.compute(pred, target, weight, reduction, avg_factor)
