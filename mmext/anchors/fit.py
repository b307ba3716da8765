"""anchor_fit's pipeline: read boxes and anchors, measure, search, report.

:func:`load_fit_inputs` reads an mmdet config (or an annotation file plus
flags) into boxes, an :class:`AnchorSpec` and the train resize rules;
:func:`fit_anchors` returns every number anchor_fit prints and writes.
"""
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..data import BoxTable, load_boxes, load_boxes_from_config
from ..utils import MMExtError
from ..utils.config import load_config, set_data_root, train_dataset_cfg
from .anchor_spec import AnchorSpec, anchor_spec_from_config
from .box_stats import box_statistics
from .coverage import anchor_coverage
from .search import search_anchor_shapes
from .summary import OBJECTIVES, aggregate, class_scores, coverage_summary
from .train_scale import (ResizeRule, ScaledBoxes, fixed_scale_rule,
                          resize_rules_from_pipeline, scale_boxes)

#: Printed with every table: which way round the ratio is.
RATIO_NOTE = 'ratio = h/w (mmdet convention)'
#: A recommendation is worth a training run when its objective on all boxes
#: rises by this much, or the worst class's share of GT boxes without a
#: positive anchor falls by WORTH_NO_POS_DROP.
WORTH_OBJECTIVE_GAIN = 0.02
WORTH_NO_POS_DROP = 0.05


@dataclass
class FitInputs:
    """What anchor_fit measures.

    Args:
        table: The labeled train boxes.
        spec: Current anchors and assigner.
        rules: Train resizes (ends and middle of a random range).
        source: Annotation file or folder.
        config_path: The mmdet config, if one was given.
    """
    table: BoxTable
    spec: AnchorSpec
    rules: List[ResizeRule]
    source: str
    config_path: Optional[str] = None


def spec_overrides(spec: AnchorSpec, strides: Optional[Sequence[float]] = None,
                   ratios: Optional[Sequence[float]] = None,
                   scales: Optional[Sequence[float]] = None,
                   pos_iou_thr: Optional[float] = None,
                   min_pos_iou: Optional[float] = None,
                   pad_divisor: Optional[int] = None) -> AnchorSpec:
    """Apply command-line overrides (None = keep) to an anchor spec."""
    changes = {}
    if strides is not None:
        changes['strides'] = tuple((float(s), float(s)) for s in strides)
        changes['base_sizes'] = None
    if ratios is not None:
        changes['ratios'] = ratios
    if scales is not None:
        changes['scales'] = scales
        changes['octave_base_scale'] = None
        changes['scales_per_octave'] = None
    if pos_iou_thr is not None:
        changes['pos_iou_thr'] = float(pos_iou_thr)
    if min_pos_iou is not None:
        changes['min_pos_iou'] = float(min_pos_iou)
    if pad_divisor is not None:
        changes['pad_size_divisor'] = int(pad_divisor)
    for key in ('ratios', 'scales', 'strides'):
        vals = changes.get(key)
        if vals is not None and (len(vals) == 0 or min(np.ravel(vals)) <= 0):
            raise MMExtError(f'--{key}: values must be positive numbers')
    return spec.replace(**changes)


def load_fit_inputs(config: Optional[str] = None, data_root: Optional[str] = None,
                    ann: Optional[str] = None, img_dir: Optional[str] = None,
                    scale: Optional[Sequence[int]] = None, keep_ratio: bool = True,
                    **overrides) -> FitInputs:
    """Read boxes, anchors and train scales from a config or an annotation file.

    Args:
        config: mmdet config file (train dataset, pipeline resize, RPN
            anchors and assigner, preprocessor padding).
        data_root: Replaces the config's data_root.
        ann: COCO json, VOC folder or YOLO ``data.yaml`` (its train split;
            ``data.yaml:val`` for another), when there is no config.
        img_dir: VOC image folder.
        scale: Fixed train scale ``(w, h)``; replaces the config's resize.
        keep_ratio: For ``scale``: mmdet's keep_ratio.
        **overrides: Keyword arguments of :func:`spec_overrides`.

    Raises:
        MMExtError: neither or both of config and ann, or a bad config.
    """
    if (config is None) == (ann is None):
        raise MMExtError('give either a config or --ann/--voc-dir (exactly one)')
    if config is not None:
        cfg = load_config(config)
        if data_root:
            set_data_root(cfg, data_root)
        table = load_boxes_from_config(cfg)
        spec = anchor_spec_from_config(cfg, config)
        rules = None
        if scale is None:
            rules = resize_rules_from_pipeline(train_dataset_cfg(cfg).get('pipeline'),
                                               config)
        source = table.source
    else:
        table = load_boxes(ann, img_dir=img_dir)
        spec = AnchorSpec()
        rules = [fixed_scale_rule(None)]
        source = ann
    if scale is not None:
        rules = [fixed_scale_rule(scale, keep_ratio)]
    spec = spec_overrides(spec, **overrides)
    return FitInputs(table, spec, rules, source, config)


def _warnings(table: BoxTable) -> Dict[str, int]:
    """Count per reason: skipped records, repaired ones, excluded boxes."""
    out: Dict[str, int] = {}
    for rec in table.skipped:
        key = f'{rec.reason} (repaired, kept)' if rec.kept else f'{rec.reason} (skipped)'
        out[key] = out.get(key, 0) + 1
    n_ignored = int(table.ignore.sum())
    if n_ignored:
        out['crowd/difficult box (excluded like mmdet\'s assigner)'] = n_ignored
    for name, n in table.class_counts().items():
        if n == 0:
            out[f'class {name!r} has no boxes'] = 1
    return out


def _objective_all(covs: List, labels: np.ndarray, num_classes: int,
                   spec: AnchorSpec, objective: str) -> float:
    counts = np.bincount(labels, minlength=num_classes)
    return float(np.mean([aggregate(class_scores(c.max_iou, labels, num_classes,
                                                 spec.pos_iou_thr), counts, objective)
                          for c in covs]))


def _measure(scaled: List[ScaledBoxes], labels, names, spec, progress):
    covs = [anchor_coverage(s, spec, progress=progress) for s in scaled]
    return covs, [coverage_summary(c, labels, names, spec) for c in covs]


def fit_anchors(inputs: FitInputs, num_ratios: Optional[int] = None,
                objective: str = 'box', search_scales: bool = False,
                search_boxes: int = 20000, progress: bool = False,
                seed: int = 0) -> dict:
    """Box statistics, exact coverage, and the recommended anchors.

    Args:
        inputs: From :func:`load_fit_inputs`.
        num_ratios: K ratios to recommend (default: the current count);
            0 skips the search.
        objective: One of ``'box'``, ``'class'``, ``'worst'``.
        search_scales: Also search the anchor scales.
        search_boxes: Subsample size for the search.
        progress: tqdm progress bars on the coverage passes.
        seed: Subsample seed.

    Returns:
        A JSON-ready dict with every number (see the README).
    """
    if objective not in OBJECTIVES:
        raise MMExtError(f'--objective must be one of {OBJECTIVES}, got {objective!r}')
    table, spec = inputs.table, inputs.spec
    names = list(table.class_names)
    kept = table.select(~table.ignore)
    if len(kept) == 0:
        raise MMExtError(f'{inputs.source}: no usable boxes (see the skipped records)')
    labels = kept.label
    timing = {}
    t0 = time.perf_counter()
    scaled = [scale_boxes(table, r, spec.pad_size_divisor) for r in inputs.rules]
    stats = {r.name: box_statistics(s.bboxes, labels, names, spec.ratios)
             for r, s in zip(inputs.rules, scaled)}
    timing['box_stats'] = time.perf_counter() - t0
    t0 = time.perf_counter()
    covs, cur = _measure(scaled, labels, names, spec, progress)
    timing['coverage_current'] = time.perf_counter() - t0
    result = dict(
        note=RATIO_NOTE, source=inputs.source, config=inputs.config_path,
        num_images=table.num_images, num_boxes=int(len(kept)),
        class_names=names,
        train_scales=[r.name for r in inputs.rules],
        anchors=dict(generator=spec.generator_cfg(), pos_iou_thr=spec.pos_iou_thr,
                     min_pos_iou=spec.min_pos_iou,
                     match_low_quality=spec.match_low_quality,
                     allowed_border=spec.allowed_border,
                     pad_size_divisor=spec.pad_size_divisor),
        warnings=_warnings(table),
        box_stats=stats,
        coverage=dict(current={r.name: c for r, c in zip(inputs.rules, cur)}),
        timing_s=timing)
    k = len(spec.ratios) if num_ratios is None else int(num_ratios)
    if k <= 0:
        return result
    t0 = time.perf_counter()
    found = search_anchor_shapes(scaled, labels, len(names), spec, k, objective,
                                 search_scales, search_boxes, seed=seed)
    timing['search'] = time.perf_counter() - t0
    new_spec = spec.replace(ratios=found.ratios, scales=found.scales)
    t0 = time.perf_counter()
    new_covs, rec = _measure(scaled, labels, names, new_spec, progress)
    timing['coverage_recommended'] = time.perf_counter() - t0
    result['coverage']['recommended'] = {r.name: c for r, c in zip(inputs.rules, rec)}
    result['recommendation'] = dict(
        ratios=list(found.ratios), scales=list(found.scales),
        num_ratios=k, objective=objective, search_scales=search_scales,
        search_boxes=found.num_boxes,
        objective_search_subsample=dict(current=found.current_objective,
                                        recommended=found.objective),
        objective_all_boxes=dict(
            current=_objective_all(covs, labels, len(names), spec, objective),
            recommended=_objective_all(new_covs, labels, len(names), new_spec,
                                       objective)),
        seeds=found.seeds, best_seed=found.best_seed, rounds=found.rounds)
    result['recommendation'].update(worth_a_run(result))
    return result


def _no_positive_shares(per_scale: Dict[str, List[dict]]) -> Dict[str, float]:
    """Per class: share of GT boxes without an anchor at IoU >= pos_iou_thr,
    mean over the train scales."""
    rows = list(per_scale.values())
    names = [r['name'] for r in rows[0] if r['name'] != 'all']
    return {n: float(np.nanmean([1.0 - next(r['share_pos'] for r in scale
                                             if r['name'] == n)
                                 for scale in rows])) for n in names}


def worth_a_run(result: dict) -> dict:
    """Whether the recommended anchors are worth a training run.

    Worth it when the objective on all boxes rises by at least
    :data:`WORTH_OBJECTIVE_GAIN`, or the share of GT boxes without a
    positive anchor of the worst class falls by at least
    :data:`WORTH_NO_POS_DROP`.

    Returns:
        ``worth_a_run`` (bool), ``verdict`` (one line with the numbers),
        ``worst_class`` and its ``no_pos_share`` current/recommended.
    """
    rec = result['recommendation']
    obj = rec['objective_all_boxes']
    gain = obj['recommended'] - obj['current']
    cur = _no_positive_shares(result['coverage']['current'])
    new = _no_positive_shares(result['coverage']['recommended'])
    worst = max(cur, key=lambda n: (cur[n], n)) if cur else None
    drop = cur[worst] - new[worst] if worst else 0.0
    worth = gain >= WORTH_OBJECTIVE_GAIN or drop >= WORTH_NO_POS_DROP
    numbers = (f"objective '{rec['objective']}' {obj['current']:.3f} -> "
               f"{obj['recommended']:.3f} ({gain:+.3f})")
    if worst:
        numbers += (f'; {worst}, the class with most GT boxes without a '
                    f'positive anchor: {cur[worst]:.0%} -> {new[worst]:.0%}')
    if worth:
        verdict = f'change recommended: {numbers}'
    else:
        verdict = (f'no change recommended: {numbers} (below +'
                   f'{WORTH_OBJECTIVE_GAIN:g} and -{WORTH_NO_POS_DROP:.0%}); '
                   'no config is written')
        if worst and rec['objective'] != 'worst' and cur[worst] >= \
                WORTH_NO_POS_DROP:
            verdict += (f'. {worst} keeps {cur[worst]:.0%} of its boxes '
                        'without a positive anchor: try --objective worst '
                        f'--num-ratios {rec["num_ratios"] + 2}')
    return dict(worth_a_run=bool(worth), verdict=verdict, worst_class=worst,
                worst_no_pos_share=dict(current=cur.get(worst),
                                        recommended=new.get(worst)))
