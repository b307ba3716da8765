"""Shared plumbing of the mmext focal losses: per-class parameters, weights.

Kept apart from the loss formulas so that each loss module reads like its
formula. Nothing here is registered.
"""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

#: ``1 - p_t`` is clamped from below at this value before ``pow(gamma)``.
#: For gamma < 1 the modulating factor ``(1 - p_t) ** gamma`` has an infinite
#: derivative at p_t = 1, and a saturated float32 probability (logit > ~17)
#: makes the gradient ``inf * 0 = nan`` (mmdet's py_sigmoid_focal_loss does
#: this for gamma=0.5). Below the clamp the loss is < 1e-12, so values agree
#: with the unclamped formula to far below float32 resolution.
MIN_ONE_MINUS_PT = 1e-12

ScalarOrList = Union[float, Sequence[float]]


def check_per_class(name: str, value: Optional[ScalarOrList],
                    lower: Optional[float] = None,
                    upper: Optional[float] = None) -> None:
    """Validate a scalar-or-list loss parameter at construction time.

    Args:
        name: Argument name, used in the error message.
        value: ``None``, a number or a sequence of numbers.
        lower: Smallest allowed entry (inclusive), if any.
        upper: Largest allowed entry (inclusive), if any.

    Raises:
        ValueError: an entry is out of range or the list is empty.
    """
    if value is None:
        return
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f'{name}: empty list')
    for v in values:
        if lower is not None and float(v) < lower:
            raise ValueError(f'{name}: entry {v} is below {lower}')
        if upper is not None and float(v) > upper:
            raise ValueError(f'{name}: entry {v} is above {upper}')


def per_class_tensor(name: str, value: Union[float, Sequence[float], Tensor],
                     num_classes: int, like: Tensor) -> Tensor:
    """A scalar or per-class parameter as a tensor of shape ``(num_classes,)``.

    Args:
        name: Argument name, used in the error message.
        value: A number, a sequence of ``num_classes`` numbers or a tensor.
        num_classes: Number of logits per sample the loss sees.
        like: Tensor whose dtype and device the result takes.

    Raises:
        ValueError: a list whose length is not ``num_classes``.
    """
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        return t.expand(num_classes)
    if t.numel() != num_classes:
        raise ValueError(f'{name} has {t.numel()} entries but the head gives '
                         f'{num_classes} logits per sample')
    return t.reshape(num_classes)


def match_weight_to_loss(weight: Optional[Tensor], loss: Tensor) -> Optional[Tensor]:
    """Reshape mmdet's ``weight`` argument to broadcast against ``loss``.

    Follows mmdet's focal loss: a per-sample weight ``(N,)`` against an
    ``(N, C)`` loss becomes ``(N, 1)``; a flattened ``(N * C,)`` weight becomes
    ``(N, C)``.

    Args:
        weight: Sample-wise (or element-wise) weight, or None.
        loss: Element-wise loss, ``(N,)`` or ``(N, C)``.
    """
    if weight is None:
        return None
    weight = weight.to(loss.dtype)
    if weight.shape == loss.shape:
        return weight
    if weight.size(0) == loss.size(0) and loss.dim() == 2 and weight.numel() == loss.size(0):
        return weight.view(-1, 1)
    if weight.numel() == loss.numel():
        return weight.view(loss.shape)
    raise ValueError(f'weight of shape {tuple(weight.shape)} does not match '
                     f'a loss of shape {tuple(loss.shape)}')
