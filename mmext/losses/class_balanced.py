r"""Class-balanced weights from the effective number of samples (Cui et al., 2019).

A class with :math:`n_c` boxes has effective number
:math:`E_c = (1 - \beta^{n_c}) / (1 - \beta)`; its weight is
:math:`w_c \propto 1 / E_c = (1 - \beta) / (1 - \beta^{n_c})`, normalised so
the foreground weights sum to the number of classes. ``beta=0`` gives equal
weights, ``beta -> 1`` inverse frequency.
"""
from typing import List, Optional, Sequence

import numpy as np

from ..data import class_counts  # noqa: F401  (counting is a data concern)
from ..utils import MMExtError


def class_balanced_weights(counts: Sequence[int], beta: float = 0.999,
                           background_weight: Optional[float] = None) -> List[float]:
    """Per-class weights ``w_c ∝ (1 - beta) / (1 - beta ** n_c)``.

    Args:
        counts: Number of training boxes ``n_c`` per class (>= 1 each).
        beta: Hyper-parameter in [0, 1). Defaults to 0.999.
        background_weight: If given, appended as the last entry (the
            background logit of a softmax R-CNN head); it is not part of the
            normalisation.

    Returns:
        ``len(counts)`` weights summing to ``len(counts)``, plus the
        background weight if given.

    Raises:
        MMExtError: beta outside [0, 1), a class with no boxes, or a
            negative background weight.
    """
    if not 0.0 <= beta < 1.0:
        raise MMExtError(f'class-balanced weights: beta={beta} must be in [0, 1)')
    if background_weight is not None and not (
            np.isfinite(background_weight) and background_weight >= 0):
        raise MMExtError(f'class-balanced weights: background weight '
                         f'{background_weight} must be a number >= 0 (a loss '
                         'weight)')
    n = np.asarray(counts, dtype=np.float64)
    if n.size == 0 or (n < 1).any():
        raise MMExtError(f'class-balanced weights: every class needs >= 1 box, '
                         f'got counts {list(counts)}')
    raw = (1.0 - beta) / (1.0 - np.power(beta, n))
    weights = (raw / raw.sum() * n.size).tolist()
    if background_weight is not None:
        weights.append(float(background_weight))
    return weights
