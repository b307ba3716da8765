"""Search K anchor ratios (and optionally the scales) that maximise coverage.

The search works on a subsample of boxes at every training scale. For a
log-spaced grid of candidate ratios (and scales) it computes once, exactly,
the max IoU of each box with each candidate anchor shape
(:func:`~mmext.anchors.coverage.max_iou_by_base`); the max IoU of any set of
ratios is then the max of their columns. Seeds come from quantiles and from
1-D k-means of log(h/w); a coordinate search then replaces one ratio at a
time by the grid value that improves the objective most, until nothing
improves; a second pass does the same on a finer grid around the chosen
ratios. The caller reports the final numbers on all boxes.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .anchor_spec import AnchorSpec
from .coverage import max_iou_by_base
from .summary import aggregate, class_scores
from .train_scale import ScaledBoxes

#: Candidate ratios never go beyond this factor of a square (h/w in 1/64..64).
MAX_LOG_RATIO = np.log(64.0)


@dataclass
class SearchResult:
    """Outcome of :func:`search_anchor_shapes`.

    Attributes:
        ratios: Recommended ratios h/w, ascending.
        scales: Recommended scales (the current ones unless searched).
        objective: Objective value of the recommendation on the subsample.
        current_objective: Objective of the current anchors on the subsample.
        seeds: Objective of each seed, by name.
        best_seed: The seed the coordinate search started from.
        rounds: Objective after each coordinate-search round.
        num_boxes: Boxes in the subsample (per training scale).
    """
    ratios: Tuple[float, ...]
    scales: Tuple[float, ...]
    objective: float
    current_objective: float
    seeds: Dict[str, float] = field(default_factory=dict)
    best_seed: str = ''
    rounds: List[float] = field(default_factory=list)
    num_boxes: int = 0


def quantile_seed(log_ratio: np.ndarray, k: int,
                  weights: Optional[np.ndarray] = None) -> np.ndarray:
    """K ratios at the (i + 0.5) / K weighted quantiles of log(h/w)."""
    order = np.argsort(log_ratio)
    w = np.ones(len(order)) if weights is None else weights[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    q = (np.arange(k) + 0.5) / k
    return np.exp(np.interp(q, cdf, log_ratio[order]))


def kmeans_seed(log_ratio: np.ndarray, k: int,
                weights: Optional[np.ndarray] = None, iters: int = 50) -> np.ndarray:
    """K ratios from weighted 1-D k-means (Lloyd) on log(h/w)."""
    w = np.ones(len(log_ratio)) if weights is None else weights
    centres = np.log(quantile_seed(log_ratio, k, weights))
    for _ in range(iters):
        assign = np.abs(log_ratio[:, None] - centres[None, :]).argmin(axis=1)
        sums = np.bincount(assign, weights=w * log_ratio, minlength=k)
        mass = np.bincount(assign, weights=w, minlength=k)
        new = np.where(mass > 0, sums / np.maximum(mass, 1e-12), centres)
        if np.allclose(new, centres):
            break
        centres = new
    return np.exp(np.sort(centres))


def _ratio_grid(log_ratio: np.ndarray, labels: np.ndarray, extra: Sequence[float],
                size: int) -> np.ndarray:
    # Per-class percentiles, so that a rare class's shapes are on the grid too.
    per_class = [log_ratio[labels == c] for c in np.unique(labels)]
    lo = max(min(np.percentile(x, 1) for x in per_class), -MAX_LOG_RATIO)
    hi = min(max(np.percentile(x, 99) for x in per_class), MAX_LOG_RATIO)
    lo, hi = min(lo, np.log(min(extra))), max(hi, np.log(max(extra)))
    grid = np.exp(np.linspace(lo, hi, size))
    return np.unique(np.round(np.concatenate([grid, extra]), 4))


class _Objective:
    """Objective of index sets into the candidate (ratio, scale) columns."""

    def __init__(self, tables: List[np.ndarray], labels: np.ndarray,
                 num_classes: int, pos_iou_thr: float, objective: str):
        self.tables = tables  # per training scale: (N, R, S) max IoU
        self.labels = labels
        self.num_classes = num_classes
        self.thr = pos_iou_thr
        self.objective = objective
        self.counts = np.bincount(labels, minlength=num_classes)

    def _best(self, table, r_idx, s_idx):
        return table[:, r_idx][:, :, s_idx].max(axis=(1, 2))

    def value(self, r_idx: Sequence[int], s_idx: Sequence[int]) -> float:
        vals = [aggregate(class_scores(self._best(t, list(r_idx), list(s_idx)),
                                       self.labels, self.num_classes, self.thr),
                          self.counts, self.objective) for t in self.tables]
        return float(np.mean(vals))

    def replace_one(self, r_idx: List[int], s_idx: List[int], slot: int,
                    axis: int) -> np.ndarray:
        """Objective for every candidate in one slot, the others fixed."""
        vals = []
        for t in self.tables:
            if axis == 0:
                others = [r for k, r in enumerate(r_idx) if k != slot]
                base = (self._best(t, others, s_idx) if others else
                        np.zeros(len(t)))
                cand = t[:, :, s_idx].max(axis=2)  # (N, R)
            else:
                others = [s for k, s in enumerate(s_idx) if k != slot]
                base = (self._best(t, r_idx, others) if others else
                        np.zeros(len(t)))
                cand = t[:, r_idx, :].max(axis=1)  # (N, S)
            best = np.maximum(base[:, None], cand)
            vals.append(aggregate(class_scores(best, self.labels, self.num_classes,
                                               self.thr), self.counts, self.objective))
        return np.mean(vals, axis=0)


def _coordinate_search(obj: _Objective, r_idx: List[int], s_idx: List[int],
                       search_scales: bool, max_rounds: int) -> Tuple[List[int], List[int], List[float]]:
    current = obj.value(r_idx, s_idx)
    history = [current]
    for _ in range(max_rounds):
        improved = False
        axes = (0, 1) if search_scales else (0, )
        for axis in axes:
            chosen = r_idx if axis == 0 else s_idx
            for slot in range(len(chosen)):
                vals = obj.replace_one(r_idx, s_idx, slot, axis)
                vals[[c for k, c in enumerate(chosen) if k != slot]] = -np.inf
                best = int(np.argmax(vals))
                if vals[best] > current + 1e-12:
                    chosen[slot] = best
                    current = float(vals[best])
                    improved = True
        history.append(current)
        if not improved:
            break
    return r_idx, s_idx, history


def _subsample(labels: np.ndarray, max_boxes: int, seed: int,
               stratified: bool) -> np.ndarray:
    """Box indices for the search: uniform, or the same quota per class.

    Per-class scores are means within a class, so a per-class quota leaves
    them unbiased and keeps rare classes in the class-balanced and
    worst-class objectives.
    """
    if len(labels) <= max_boxes:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    if not stratified:
        return np.sort(rng.choice(len(labels), max_boxes, replace=False))
    classes = np.unique(labels)
    quota = max(1, max_boxes // len(classes))
    picks = []
    for c in classes:
        rows = np.nonzero(labels == c)[0]
        picks.append(rows if len(rows) <= quota else rng.choice(rows, quota, replace=False))
    return np.sort(np.concatenate(picks))


def _nearest(values: Sequence[float], grid: np.ndarray) -> List[int]:
    """Index of the nearest grid value (in log space) for each value."""
    return [int(np.abs(np.log(grid) - np.log(v)).argmin()) for v in values]


def _objective_on_grid(subs: List[ScaledBoxes], labels: np.ndarray, num_classes: int,
                       spec: AnchorSpec, r_grid: np.ndarray, s_grid: np.ndarray,
                       objective: str) -> _Objective:
    """Exact max-IoU tables for every (ratio, scale) candidate, and the objective."""
    cand = spec.replace(ratios=r_grid, scales=s_grid, scale_major=True)
    n = len(labels)
    tables = [max_iou_by_base(b, cand).reshape(n, len(r_grid), len(s_grid)) for b in subs]
    return _Objective(tables, labels, num_classes, spec.pos_iou_thr, objective)


def search_anchor_shapes(boxes_per_scale: List[ScaledBoxes], labels: np.ndarray,
                         num_classes: int, spec: AnchorSpec, num_ratios: int,
                         objective: str = 'box', search_scales: bool = False,
                         max_boxes: int = 20000, grid_size: int = 41,
                         seed: int = 0, max_rounds: int = 6) -> SearchResult:
    """Search ``num_ratios`` ratios (and the scales) maximising coverage.

    Args:
        boxes_per_scale: The same boxes at each training scale.
        labels: (N,) class index per box.
        num_classes: Number of classes.
        spec: Current anchors and assigner (strides, scales, thresholds).
        num_ratios: K, the number of ratios to recommend.
        objective: ``'box'`` (box-weighted mean), ``'class'`` (class-balanced
            mean) or ``'worst'`` (worst class) of the per-class coverage.
        search_scales: Also search the scales (keeping their number).
        max_boxes: Subsample size for the search (uniform for ``'box'``,
            an equal quota per class otherwise).
        grid_size: Number of log-spaced candidate ratios.
        seed: Subsample seed.
        max_rounds: Coordinate-search rounds at most.
    """
    if spec.scales is None:
        raise ValueError('ratio search needs explicit anchor scales')
    idx = _subsample(labels, max_boxes, seed, stratified=objective != 'box')
    subs = [b.take(idx) for b in boxes_per_scale]
    sub_labels = labels[idx]
    log_ratio = np.log(subs[0].ratio_h_over_w)
    counts = np.bincount(sub_labels, minlength=num_classes).astype(float)
    weights = None
    if objective != 'box':
        # Class-balanced seeds: every class weighs the same in the quantiles.
        weights = 1.0 / np.maximum(counts[sub_labels], 1)
    seeds = {'quantiles': quantile_seed(log_ratio, num_ratios, weights),
             'kmeans': kmeans_seed(log_ratio, num_ratios, weights)}
    if len(spec.ratios) == num_ratios:
        seeds['current'] = np.array(spec.ratios)
    extra = np.concatenate(list(seeds.values()) + [np.array(spec.ratios)])
    r_grid = _ratio_grid(log_ratio, sub_labels, extra, grid_size)
    s_grid = np.array(spec.scales, dtype=float)
    if search_scales:
        steps = 2.0 ** (np.arange(-4, 5) / 4)
        s_grid = np.unique(np.round(np.concatenate(
            [s_grid, np.outer(spec.scales, steps).ravel()]), 4))
    obj = _objective_on_grid(subs, sub_labels, num_classes, spec, r_grid, s_grid,
                             objective)
    s_idx = _nearest(spec.scales, s_grid)
    cur_r = _nearest(spec.ratios, r_grid)
    current_obj = obj.value(cur_r, s_idx)
    seed_vals = {}
    best_name, best_val, best_r = None, -np.inf, None
    for name, values in seeds.items():
        r_idx = _nearest(values, r_grid)
        if len(set(r_idx)) < len(r_idx):
            # Two seeds on one grid point: spread the duplicates.
            free = [k for k in range(len(r_grid)) if k not in r_idx]
            r_idx = list(dict.fromkeys(r_idx)) + free[:len(r_idx) - len(set(r_idx))]
        seed_vals[name] = obj.value(r_idx, s_idx)
        if seed_vals[name] > best_val:
            best_name, best_val, best_r = name, seed_vals[name], r_idx
    r_idx, s_idx, history = _coordinate_search(obj, list(best_r), list(s_idx),
                                               search_scales, max_rounds)
    # Refine: a fine grid (1/4 of the coarse step) around each chosen ratio.
    step = np.log(r_grid[-1] / r_grid[0]) / max(grid_size - 1, 1)
    chosen = r_grid[r_idx]
    r_grid = np.unique(np.round(np.concatenate(
        [chosen, np.outer(chosen, np.exp(step * np.linspace(-1, 1, 9))).ravel()]), 4))
    obj = _objective_on_grid(subs, sub_labels, num_classes, spec, r_grid, s_grid,
                             objective)
    r_idx, s_idx, fine = _coordinate_search(obj, _nearest(chosen, r_grid), list(s_idx),
                                            search_scales, max_rounds)
    history += fine[1:]
    return SearchResult(
        ratios=tuple(sorted(float(r_grid[k]) for k in r_idx)),
        scales=tuple(sorted(float(s_grid[k]) for k in s_idx)),
        objective=history[-1],
        current_objective=current_obj,
        seeds=seed_vals,
        best_seed=best_name,
        rounds=history,
        num_boxes=len(idx))
