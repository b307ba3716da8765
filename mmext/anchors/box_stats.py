"""Per-class box statistics at training scale (size, area, ratio h/w)."""
from typing import Dict, List, Sequence

import numpy as np

#: Percentiles reported for every quantity.
PERCENTILES = (5, 25, 50, 75, 95)


def _percentiles(values: np.ndarray) -> Dict[str, float]:
    if len(values) == 0:
        return {f'p{p}': float('nan') for p in PERCENTILES}
    q = np.percentile(values, PERCENTILES)
    return {f'p{p}': float(v) for p, v in zip(PERCENTILES, q)}


def box_statistics(bboxes: np.ndarray, labels: np.ndarray,
                   class_names: Sequence[str],
                   ratio_marks: Sequence[float]) -> List[dict]:
    """Statistics of boxes per class, plus one row ``'all'``.

    Args:
        bboxes: (N, 4) xyxy boxes in pixels at training scale.
        labels: (N,) class index per box.
        class_names: Class names, index = label.
        ratio_marks: Ratios h/w for the "share below / above" columns
            (usually the anchor ratios).

    Returns:
        One dict per class and a last one for all boxes: ``name``, ``count``,
        ``share`` (of all boxes), ``width``/``height``/``area``/``ratio_h_over_w``
        percentile dicts (pixels, pixels^2, unitless), ``share_below`` and
        ``share_above`` (dicts keyed by the ratio mark as a string).
    """
    w = bboxes[:, 2] - bboxes[:, 0]
    h = bboxes[:, 3] - bboxes[:, 1]
    ratio = h / w
    total = max(len(labels), 1)
    rows = []
    groups = [(name, labels == k) for k, name in enumerate(class_names)]
    groups.append(('all', np.ones(len(labels), dtype=bool)))
    for name, mask in groups:
        r = ratio[mask]
        n = int(mask.sum())
        rows.append(dict(
            name=name,
            count=n,
            share=n / total,
            width=_percentiles(w[mask]),
            height=_percentiles(h[mask]),
            area=_percentiles(w[mask] * h[mask]),
            ratio_h_over_w=_percentiles(r),
            share_below={f'{m:g}': float((r < m).mean()) if n else float('nan')
                         for m in ratio_marks},
            share_above={f'{m:g}': float((r > m).mean()) if n else float('nan')
                         for m in ratio_marks}))
    return rows
