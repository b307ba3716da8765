"""Exact anchor coverage of ground-truth boxes, without the full IoU matrix.

For every GT box this computes what mmdet's ``AnchorGenerator.grid_priors``
plus ``MaxIoUAssigner`` would give on that image, image by image:

* ``max_iou``: the largest IoU over all anchors of the image;
* ``n_pos_iou``: the number of anchors with IoU >= ``pos_iou_thr``;
* ``n_assigned``: the number of anchors ``MaxIoUAssigner`` finally assigns
  to the GT (positives go to the GT they overlap most; the low-quality rule
  then gives every GT with max IoU >= ``min_pos_iou`` the anchors tied at its
  max, later GTs of the image overriding earlier ones, as mmdet's loop does).

Why it is fast: anchors of one level and one base shape form a grid
``base + (j * stride_w, i * stride_h)``. The overlap of an anchor with a box
is ``ov_x(j) * ov_y(i)``, each a symmetric trapezoid of the centre distance,
so the max IoU of that grid is reached at the grid points nearest to the
box centre (two candidates per axis). Anchors with IoU >= t need
``ov_x * ov_y >= t * (area_gt + area_anchor) / (1 + t)``, which bounds the
window of grid positions to enumerate; only those few are evaluated, with
mmdet's own IoU formula (``BboxOverlaps2D``), in float64, so the numbers agree
with mmdet run in float64 exactly, not only approximately.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import numpy as np

from .anchor_spec import AnchorSpec
from .train_scale import ScaledBoxes

#: mmdet's bbox_overlaps guards the union with this epsilon.
UNION_EPS = 1e-6
#: Pixel slack added to enumeration windows; every position inside is then
#: checked with the exact formula, so slack only costs time, never accuracy.
WINDOW_SLACK_PX = 1e-6
#: Threads over box chunks (numpy's loops release the GIL).
COVERAGE_THREADS = min(2, os.cpu_count() or 1)


@dataclass
class Coverage:
    """Per-GT coverage by the anchors of one :class:`AnchorSpec`.

    Attributes:
        max_iou: (N,) max IoU over all anchors of the box's image.
        n_pos_iou: (N,) anchors with IoU >= pos_iou_thr.
        n_assigned: (N,) anchors MaxIoUAssigner assigns to the box
            (``None`` when not computed).
        best_level: (N,) level index of the best anchor.
        best_base: (N,) base-anchor index (within the level) of the best anchor.
    """
    max_iou: np.ndarray
    n_pos_iou: np.ndarray
    n_assigned: Optional[np.ndarray]
    best_level: np.ndarray
    best_base: np.ndarray


@dataclass
class _Grid:
    """One level and one base anchor, against a chunk of boxes."""
    level: int
    base: int
    stride: Tuple[float, float]
    anchor: np.ndarray  # (4,) base anchor xyxy
    lo: np.ndarray  # (n, 2) first valid grid index (x, y)
    hi: np.ndarray  # (n, 2) last valid grid index (x, y)
    feat_w: np.ndarray  # (n,) grid width, for flat anchor indices
    level_offset: np.ndarray  # (n,) flat index of the level's first anchor
    num_base: int


def _axis_overlap(g1, g2, a1, a2):
    """mmdet's clamp(min(g2, a2) - max(g1, a1), 0) on one axis."""
    return np.clip(np.minimum(g2, a2) - np.maximum(g1, a1), 0, None)


def _iou_at(g: np.ndarray, area_g: np.ndarray, grid: _Grid, j: np.ndarray,
            i: np.ndarray) -> np.ndarray:
    """IoU of boxes ``g`` with the grid's anchors at positions (j, i).

    Same operations and order as mmdet's ``bbox_overlaps`` on
    ``grid_priors`` output, so float64 results are bit-identical.
    """
    sx, sy = grid.stride
    tx = j.astype(np.float64) * sx
    ty = i.astype(np.float64) * sy
    ax1 = grid.anchor[0] + tx
    ay1 = grid.anchor[1] + ty
    ax2 = grid.anchor[2] + tx
    ay2 = grid.anchor[3] + ty
    overlap = _axis_overlap(g[:, 0], g[:, 2], ax1, ax2) * _axis_overlap(
        g[:, 1], g[:, 3], ay1, ay2)
    area_a = (ax2 - ax1) * (ay2 - ay1)
    union = np.maximum(area_g + area_a - overlap, UNION_EPS)
    return overlap / union


def _valid_range(b1: float, b2: float, stride: float, n: np.ndarray,
                 limit: np.ndarray, border: float) -> Tuple[np.ndarray, np.ndarray]:
    """Grid indices [lo, hi] whose anchors mmdet keeps on one axis.

    Without ``allowed_border`` (negative) every position of the feature
    map is valid; otherwise mmdet's ``anchor_inside_flags`` keeps anchors
    with ``a1 >= -border`` and ``a2 < limit + border``.
    """
    lo = np.zeros_like(n)
    hi = n - 1
    if border < 0:
        return lo, hi
    lo = np.maximum(lo, np.ceil((-border - b1) / stride).astype(np.int64) - 1)
    hi = np.minimum(hi, np.floor((limit + border - b2) / stride).astype(np.int64) + 1)
    # Exact fix-up of the float division: step inwards until mmdet's test holds.
    for _ in range(3):
        bad_lo = b1 + lo * stride < -border
        lo = lo + bad_lo
        bad_hi = b2 + hi * stride >= limit + border
        hi = hi - bad_hi
    return lo, hi


def _grids(boxes: ScaledBoxes, spec: AnchorSpec,
           base_anchors: List[np.ndarray]) -> Iterator[_Grid]:
    offset = np.zeros(len(boxes.bboxes), dtype=np.int64)
    for level, (stride, bases) in enumerate(zip(spec.strides, base_anchors)):
        sx, sy = stride
        # featmap size = ceil(padded / stride), as the backbone + FPN give
        # for a padded input and as AnchorGenerator.valid_flags assumes.
        feat_w = np.ceil(boxes.pad_w / sx).astype(np.int64)
        feat_h = np.ceil(boxes.pad_h / sy).astype(np.int64)
        for base, anchor in enumerate(bases):
            lo_x, hi_x = _valid_range(anchor[0], anchor[2], sx, feat_w,
                                      boxes.img_w, spec.allowed_border)
            lo_y, hi_y = _valid_range(anchor[1], anchor[3], sy, feat_h,
                                      boxes.img_h, spec.allowed_border)
            yield _Grid(level, base, (sx, sy), anchor,
                        np.stack([lo_x, lo_y], 1), np.stack([hi_x, hi_y], 1),
                        feat_w, offset.copy(), len(bases))
        offset += feat_w * feat_h * len(bases)


def _nearest(centre_shift: np.ndarray, stride: float, lo: np.ndarray,
             hi: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The two grid indices nearest to the aligned position, clamped."""
    j0 = np.floor(centre_shift / stride).astype(np.int64)
    j0 = np.clip(j0, lo, np.maximum(hi, lo))
    j1 = np.clip(j0 + 1, lo, np.maximum(hi, lo))
    return j0, j1


def _grid_max(g: np.ndarray, area_g: np.ndarray, grid: _Grid):
    """Max IoU of each box over one grid, and the best axis overlaps."""
    a = grid.anchor
    cx = (g[:, 0] + g[:, 2]) / 2 - (a[0] + a[2]) / 2
    cy = (g[:, 1] + g[:, 3]) / 2 - (a[1] + a[3]) / 2
    best_ov = []
    best_idx = []
    for axis, centre in ((0, cx), (1, cy)):
        s = grid.stride[axis]
        cand = _nearest(centre, s, grid.lo[:, axis], grid.hi[:, axis])
        ovs = [_axis_overlap(g[:, axis], g[:, axis + 2], a[axis] + c * s,
                             a[axis + 2] + c * s) for c in cand]
        pick = ovs[1] > ovs[0]
        best_idx.append(np.where(pick, cand[1], cand[0]))
        best_ov.append(np.where(pick, ovs[1], ovs[0]))
    iou = _iou_at(g, area_g, grid, best_idx[0], best_idx[1])
    empty = (grid.hi < grid.lo).any(axis=1)
    iou[empty] = 0.0
    return iou, best_ov[0], best_ov[1]


def _ragged(counts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(owner row, offset within owner) for rows repeated ``counts`` times."""
    counts = np.maximum(counts, 0)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    offset = np.arange(int(counts.sum())) - np.repeat(starts, counts)
    return owner, offset


def _window(centre: np.ndarray, half: np.ndarray, stride: float,
            lo: np.ndarray, hi: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Grid indices whose anchor centre is within ``half`` px of ``centre``."""
    first = np.ceil((centre - half - WINDOW_SLACK_PX) / stride).astype(np.int64)
    last = np.floor((centre + half + WINDOW_SLACK_PX) / stride).astype(np.int64)
    return np.maximum(first, lo), np.minimum(last, hi)


def _anchors_at_least(g: np.ndarray, area_g: np.ndarray, grid: _Grid,
                      thr: np.ndarray, ov_best: Tuple[np.ndarray, np.ndarray]):
    """All anchors of one grid with IoU >= ``thr`` (per box), exactly.

    Returns:
        (box row, flat anchor index in the image, IoU) of each such anchor.
    """
    a = grid.anchor
    wa, ha = a[2] - a[0], a[3] - a[1]
    wg, hg = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    area_a = wa * ha
    # IoU >= t  <=>  overlap >= t * (area_g + area_a) / (1 + t).
    need = thr * (area_g + area_a) / (1 + thr) * (1 - 1e-9)
    cx = (g[:, 0] + g[:, 2]) / 2 - (a[0] + a[2]) / 2
    cy = (g[:, 1] + g[:, 3]) / 2 - (a[1] + a[3]) / 2
    sx, sy = grid.stride
    # ov_x(d) = min(wa, wg, (wa + wg) / 2 - |d|) and ov_y <= its best value.
    half_x = (wa + wg) / 2 - need / np.maximum(ov_best[1], 1e-12)
    j_first, j_last = _window(cx, half_x, sx, grid.lo[:, 0], grid.hi[:, 0])
    row, off = _ragged(j_last - j_first + 1)
    j = j_first[row] + off
    ov_x = _axis_overlap(g[row, 0], g[row, 2], a[0] + j * sx, a[2] + j * sx)
    keep = ov_x > 0
    row, j, ov_x = row[keep], j[keep], ov_x[keep]
    half_y = (ha + hg[row]) / 2 - need[row] / ov_x
    i_first, i_last = _window(cy[row], half_y, sy, grid.lo[row, 1], grid.hi[row, 1])
    sub, off = _ragged(i_last - i_first + 1)
    row, j, i = row[sub], j[sub], i_first[sub] + off
    iou = _iou_at(g[row], area_g[row], grid, j, i)
    hit = iou >= thr[row]
    row, j, i, iou = row[hit], j[hit], i[hit], iou[hit]
    flat = grid.level_offset[row] + (i * grid.feat_w[row] + j) * grid.num_base + grid.base
    return row, flat, iou


def _first_per_key(keys: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Positions (into ``order``) of the first row of each key run."""
    k = keys[order]
    first = np.ones(len(k), dtype=bool)
    first[1:] = k[1:] != k[:-1]
    return order[first]


def _assign(n: int, pos: Tuple[np.ndarray, np.ndarray, np.ndarray],
            ties: Optional[Tuple[np.ndarray, np.ndarray]],
            gt_max_assign_all: bool) -> np.ndarray:
    """Per-GT anchor counts after MaxIoUAssigner's rules.

    Args:
        n: Number of GT rows in the chunk.
        pos: (gt row, anchor key, IoU) of every anchor with IoU >= pos_iou_thr.
        ties: (gt row, anchor key) of every anchor at its GT's max IoU, for
            GTs with max IoU >= min_pos_iou; None without match_low_quality.
        gt_max_assign_all: mmdet's flag (all tied anchors, or the first).
    """
    gt, key, iou = pos
    # Positive rule: each anchor goes to its max-IoU GT (first on ties).
    win = _first_per_key(key, np.lexsort((gt, -iou, key)))
    keys, gts, prio = [key[win]], [gt[win]], [np.zeros(len(win), np.int8)]
    if ties is not None and len(ties[0]):
        t_gt, t_key = ties
        if not gt_max_assign_all:
            first = _first_per_key(t_gt, np.lexsort((t_key, t_gt)))
            t_gt, t_key = t_gt[first], t_key[first]
        # Low-quality loop runs over GTs in order: the last GT wins an anchor.
        last = _first_per_key(t_key, np.lexsort((-t_gt, t_key)))
        keys.append(t_key[last])
        gts.append(t_gt[last])
        prio.append(np.ones(len(last), np.int8))
    keys, gts, prio = map(np.concatenate, (keys, gts, prio))
    final = _first_per_key(keys, np.lexsort((-prio, keys)))
    return np.bincount(gts[final], minlength=n)


def _coverage_chunk(boxes: ScaledBoxes, spec: AnchorSpec,
                    base_anchors: List[np.ndarray], with_assigned: bool):
    g = boxes.bboxes
    n = len(g)
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    grids = list(_grids(boxes, spec, base_anchors))
    per_grid = [_grid_max(g, area_g, grid) for grid in grids]
    ious = np.stack([p[0] for p in per_grid], axis=1)
    best = ious.argmax(axis=1)
    max_iou = ious[np.arange(n), best]
    thr = np.full(n, spec.pos_iou_thr)
    pos = [[], [], []]
    ties = [[], []]
    low_quality = spec.match_low_quality and with_assigned
    for k, (grid, (grid_iou, ov_x, ov_y)) in enumerate(zip(grids, per_grid)):
        rows = np.nonzero(grid_iou >= spec.pos_iou_thr)[0]
        if len(rows):
            r, flat, iou = _anchors_at_least(g[rows], area_g[rows], _take(grid, rows),
                                             thr[rows], (ov_x[rows], ov_y[rows]))
            pos[0].append(rows[r])
            pos[1].append(flat)
            pos[2].append(iou)
        if not low_quality:
            continue
        rows = np.nonzero((grid_iou == max_iou) & (max_iou >= spec.min_pos_iou)
                          & (max_iou > 0))[0]
        if len(rows):
            r, flat, _ = _anchors_at_least(g[rows], area_g[rows], _take(grid, rows),
                                           max_iou[rows], (ov_x[rows], ov_y[rows]))
            ties[0].append(rows[r])
            ties[1].append(flat)
    pos = [np.concatenate(p) if p else np.zeros(0) for p in pos]
    pos[0] = pos[0].astype(np.int64)
    pos[1] = pos[1].astype(np.int64)
    n_pos = np.bincount(pos[0], minlength=n)
    n_assigned = None
    if with_assigned:
        tie_arr = None
        if low_quality:
            tie_arr = tuple(np.concatenate(t).astype(np.int64) if t else
                            np.zeros(0, np.int64) for t in ties)
        # Anchor keys must be unique across images of the chunk.
        img_key = boxes.image_index.astype(np.int64) << 34
        pos_keyed = (pos[0], img_key[pos[0]] + pos[1], pos[2])
        if tie_arr is not None:
            tie_arr = (tie_arr[0], img_key[tie_arr[0]] + tie_arr[1])
        n_assigned = _assign(n, pos_keyed, tie_arr, spec.gt_max_assign_all)
    levels = np.array([gr.level for gr in grids])
    bases = np.array([gr.base for gr in grids])
    return max_iou, n_pos, n_assigned, levels[best], bases[best]


def _take(grid: _Grid, rows: np.ndarray) -> _Grid:
    return _Grid(grid.level, grid.base, grid.stride, grid.anchor, grid.lo[rows],
                 grid.hi[rows], grid.feat_w[rows], grid.level_offset[rows],
                 grid.num_base)


def _image_chunks(image_index: np.ndarray, chunk_size: int) -> List[np.ndarray]:
    """Row indices grouped into chunks of about ``chunk_size`` whole images."""
    order = np.argsort(image_index, kind='stable')
    sorted_img = image_index[order]
    bounds = [0]
    while bounds[-1] < len(order):
        cut = min(bounds[-1] + chunk_size, len(order))
        if cut < len(order):
            # Move the cut to the next image boundary so no image is split.
            cut = int(np.searchsorted(sorted_img, sorted_img[cut - 1], side='right'))
        bounds.append(cut)
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def anchor_coverage(boxes: ScaledBoxes,
                    spec: AnchorSpec,
                    with_assigned: bool = True,
                    chunk_size: int = 32768,
                    progress: bool = False) -> Coverage:
    """Exact per-GT coverage of ``boxes`` by the anchors of ``spec``.

    Args:
        boxes: GT boxes at training scale with their image and padded sizes.
        spec: Anchors and assigner thresholds.
        with_assigned: Also resolve MaxIoUAssigner's assignment across the
            GTs of each image (``n_assigned``); a little slower.
        chunk_size: Boxes per chunk (whole images); bounds the memory.
        progress: Show a tqdm progress bar.
    """
    n = len(boxes.bboxes)
    max_iou = np.zeros(n)
    n_pos = np.zeros(n, dtype=np.int64)
    n_assigned = np.zeros(n, dtype=np.int64) if with_assigned else None
    best_level = np.zeros(n, dtype=np.int64)
    best_base = np.zeros(n, dtype=np.int64)
    base_anchors = spec.base_anchors()
    chunks = _image_chunks(boxes.image_index, chunk_size)
    # numpy releases the GIL inside its array loops, so independent chunks
    # in two threads use both cores; results are stored in chunk order
    with ThreadPoolExecutor(max_workers=COVERAGE_THREADS) as pool:
        results = pool.map(lambda rows: _coverage_chunk(
            boxes.take(rows), spec, base_anchors, with_assigned), chunks)
        if progress and len(chunks) > 1:
            from tqdm import tqdm
            results = tqdm(results, total=len(chunks),
                           desc='anchor coverage', unit='chunk')
        for rows, (m, p, a, lv, bs) in zip(chunks, results):
            max_iou[rows], n_pos[rows] = m, p
            best_level[rows], best_base[rows] = lv, bs
            if with_assigned:
                n_assigned[rows] = a
    return Coverage(max_iou, n_pos, n_assigned, best_level, best_base)


def max_iou_by_base(boxes: ScaledBoxes, spec: AnchorSpec,
                    chunk_size: int = 65536) -> np.ndarray:
    """Max IoU of each box per base-anchor shape, maxed over levels.

    Used by the ratio search: the max IoU of a set of ratios is the max of
    these columns.

    Returns:
        (N, num_base_anchors) float64, columns in mmdet's base-anchor order.
    """
    n = len(boxes.bboxes)
    out = np.zeros((n, spec.num_base_anchors()))
    base_anchors = spec.base_anchors()
    for start in range(0, n, chunk_size):
        rows = np.arange(start, min(n, start + chunk_size))
        sub = boxes.take(rows)
        g = sub.bboxes
        area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
        for grid in _grids(sub, spec, base_anchors):
            iou = _grid_max(g, area_g, grid)[0]
            out[rows, grid.base] = np.maximum(out[rows, grid.base], iou)
    return out
