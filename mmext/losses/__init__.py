"""Focal-loss variants that are correct in two-stage RPN and R-CNN heads.

Importing this package registers, in mmdet's ``MODELS``:

- ``SoftmaxFocalLoss``: R-CNN bbox heads (num_classes + 1 softmax logits).
- ``SigmoidFocalLoss``: RPN / dense heads, per-class alpha and gamma; a
  drop-in for mmdet's ``FocalLoss``.
- ``EqualizedFocalLoss``: sigmoid heads, per-class gamma from gradient
  statistics (Li et al., CVPR 2022).

plus :func:`class_balanced_weights` / :func:`class_counts` (Cui et al., 2019).
"""
from .class_balanced import class_balanced_weights, class_counts
from .equalized_focal_loss import EqualizedFocalLoss
from .sigmoid_focal_loss import SigmoidFocalLoss, sigmoid_focal_loss
from .softmax_focal_loss import SoftmaxFocalLoss, softmax_focal_loss

__all__ = [
    'SoftmaxFocalLoss', 'softmax_focal_loss', 'SigmoidFocalLoss',
    'sigmoid_focal_loss', 'EqualizedFocalLoss', 'class_balanced_weights',
    'class_counts'
]
