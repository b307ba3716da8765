r"""Equalized Focal Loss (Li et al., CVPR 2022) for sigmoid dense/RPN heads.

Each class :math:`j` gets its own focusing factor from the accumulated
positive/negative gradient ratio :math:`g_j \in [0, 1]` of its logits:

.. math::

    \gamma_j = \gamma_b + s (1 - g_j), \qquad
    EFL_{ij} = -\frac{\gamma_j}{\gamma_b}\, \alpha_t\,
               (1 - p_t)^{\gamma_j} \log p_t

Rare classes (small :math:`g_j`, their logits mostly pushed down) get a larger
gamma and a larger weight. The gradient statistics are collected, as in the
reference implementation, by a backward hook on the logits: the absolute
gradient of each logit is summed into ``pos_grad`` (target 1) or ``neg_grad``
(target 0). Under ``torch.distributed`` the per-step sums are all-reduced
before they are added, so every rank holds the statistics of the whole
batch; they are registered buffers, so they are in the model's state_dict and
survive checkpoint save/resume.
"""
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from mmdet.registry import MODELS
from torch import Tensor

from .base import FocalLossBase
from .sigmoid_focal_loss import binary_targets, sigmoid_focal_loss
from .utils import per_class_tensor

#: Added to the negative gradient sum before dividing (reference value).
RATIO_EPS = 1e-10


@MODELS.register_module()
class EqualizedFocalLoss(FocalLossBase):
    """Equalized Focal Loss with gradient statistics kept as buffers.

    Args:
        num_classes: Number of sigmoid logits per sample (1 for RPN).
        use_sigmoid: Must be True (write it in the config too, so the head
            sizes its output for a sigmoid). Defaults to True.
        gamma_b: Base focusing factor (> 0). Defaults to 2.0.
        scale_factor: ``s``, how far gamma rises for a class whose gradient
            ratio is 0. Defaults to 8.0.
        alpha: Positive weight in [0, 1], or None. Defaults to 0.25.
        class_weight: One extra multiplier per class. Defaults to None.
        reduction: 'none', 'mean' or 'sum'. Defaults to 'mean'.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
    """
    activation = 'sigmoid'

    def __init__(self,
                 num_classes: int,
                 use_sigmoid: bool = True,
                 gamma_b: float = 2.0,
                 scale_factor: float = 8.0,
                 alpha: Optional[float] = 0.25,
                 class_weight: Optional[Sequence[float]] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, alpha, class_weight, reduction, loss_weight)
        if num_classes < 1:
            raise ValueError(f'EqualizedFocalLoss: num_classes={num_classes} < 1')
        if gamma_b <= 0:
            raise ValueError(f'EqualizedFocalLoss: gamma_b={gamma_b} must be > 0')
        if scale_factor < 0:
            raise ValueError(f'EqualizedFocalLoss: scale_factor={scale_factor} < 0')
        if class_weight is not None and len(class_weight) != num_classes:
            raise ValueError(f'EqualizedFocalLoss: class_weight has '
                             f'{len(class_weight)} entries, num_classes={num_classes}')
        self.num_classes = num_classes
        self.gamma_b = float(gamma_b)
        self.scale_factor = float(scale_factor)
        self.register_buffer('pos_grad', torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer('neg_grad', torch.zeros(num_classes, dtype=torch.float64))
        # g_j starts at 1 (gamma_j = gamma_b) until gradients are seen.
        self.register_buffer('pos_neg', torch.ones(num_classes, dtype=torch.float64))
        self._stats_group = None

    def focusing_factors(self) -> Tensor:
        """Current per-class gamma_j = gamma_b + s * (1 - g_j), ``(C,)``."""
        return self.gamma_b + self.scale_factor * (1 - self.pos_neg)

    def _reduce_across_ranks(self, stats: Tensor) -> Tensor:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # A private group: this all_reduce runs inside backward and must
            # not interleave with DDP's gradient all_reduces on the default
            # group, whose order differs between ranks.
            dist.all_reduce(stats, group=self._stats_group)
        return stats

    def _ensure_stats_group(self) -> None:
        # Created in forward (every rank, same order), never inside backward.
        if (self._stats_group is None and dist.is_available()
                and dist.is_initialized() and dist.get_world_size() > 1):
            self._stats_group = dist.new_group()

    def accumulate_gradient(self, grad: Tensor, targets: Tensor) -> None:
        """Add |d loss / d logit| to the positive/negative sums of each class.

        Args:
            grad: Gradient of the logits, ``(N, C)``.
            targets: Binary targets of the logits, ``(N, C)``.
        """
        grad = grad.detach().abs().to(torch.float64)
        targets = targets.to(torch.float64)
        stats = torch.stack([(grad * targets).sum(0), (grad * (1 - targets)).sum(0)])
        stats = self._reduce_across_ranks(stats.to(self.pos_grad.device))
        self.pos_grad += stats[0]
        self.neg_grad += stats[1]
        self.pos_neg.copy_((self.pos_grad / (self.neg_grad + RATIO_EPS)).clamp(0, 1))

    def __getstate__(self) -> dict:
        # A process group cannot be pickled or deep-copied (EMA teachers).
        state = self.__dict__.copy()
        state['_stats_group'] = None
        return state

    def compute(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                reduction: str, avg_factor: Optional[float]) -> Tensor:
        """EFL of logits ``(N, C)`` against labels ``(N,)`` or ``(N, C)``.

        In training mode with a graph, registers the backward hook that
        updates the gradient statistics.
        """
        if pred.size(1) != self.num_classes:
            raise ValueError(f'EqualizedFocalLoss: {pred.size(1)} logits per '
                             f'sample, num_classes={self.num_classes}')
        gamma = self.focusing_factors().to(pred.dtype).detach()
        weighting = gamma / self.gamma_b
        if self.class_weight is not None:
            weighting = weighting * per_class_tensor(
                'class_weight', self.class_weight, self.num_classes, pred)
        if self.training and pred.requires_grad:
            self._ensure_stats_group()
            targets = binary_targets(pred, target).detach()
            pred.register_hook(lambda grad: self.accumulate_gradient(grad, targets))
        return sigmoid_focal_loss(
            pred, target, weight, gamma=gamma, alpha=self.alpha,
            class_weight=weighting, reduction=reduction, avg_factor=avg_factor)
