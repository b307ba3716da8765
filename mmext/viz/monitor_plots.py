"""Plots of a training run's monitors (matplotlib, Agg backend).

Each function takes plain data (lists/dicts as the hooks write them) and
returns a matplotlib Figure; the caller saves or embeds it.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

Series = Tuple[Sequence[float], Sequence[float]]


def rolling_band(values: Sequence[float], window: int
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Trailing rolling mean and std (population) over ``window`` points.

    Args:
        values: A series, one value per logged step.
        window: Points per window (the first points use what exists).

    Returns:
        (mean, std) arrays of the length of ``values``.
    """
    arr = np.asarray(values, dtype=np.float64)
    mean, std = np.empty_like(arr), np.empty_like(arr)
    for i in range(len(arr)):
        part = arr[max(0, i - window + 1):i + 1]
        mean[i], std[i] = part.mean(), part.std()
    return mean, std


def plot_losses_with_band(losses: Dict[str, Series], window: int = 10,
                          cv: Optional[Dict[str, Series]] = None,
                          cv_thr: Optional[float] = None) -> Figure:
    """Each loss with its rolling mean +- std band; optionally the CVs.

    Args:
        losses: Name -> (iterations, values).
        window: Logged points per band window.
        cv: Name -> (iterations, CV) as logged by LossStabilityHook.
        cv_thr: A target CV drawn as a line (0.03 = 3%); None: no line.
    """
    rows = 2 if cv else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 4 * rows), squeeze=False)
    ax = axes[0][0]
    for name, (steps, values) in sorted(losses.items()):
        mean, std = rolling_band(values, window)
        line, = ax.plot(steps, values, lw=0.6, alpha=0.5)
        ax.plot(steps, mean, color=line.get_color(), lw=1.5, label=name)
        ax.fill_between(steps, mean - std, mean + std,
                        color=line.get_color(), alpha=0.2)
    _label(ax, 'loss', f'losses: rolling mean +- std over {window} logged '
           'points', ncol=3)
    if cv:
        ax = axes[1][0]
        for name, (steps, values) in sorted(cv.items()):
            ax.plot(steps, np.asarray(values) * 100, label=name)
        if cv_thr is not None:
            ax.axhline(cv_thr * 100, color='red', ls='--',
                       label=f'target {cv_thr:.0%}')
        _label(ax, 'CV (%)', 'raw coefficient of variation over the '
               'LossStabilityHook window (informational: per-iteration '
               'noise of small batches)', ncol=3)
    fig.tight_layout()
    return fig


def plot_class_ap_progression(history: Sequence[dict],
                              watch_classes: Sequence[str] = ()) -> Figure:
    """Per-class AP (and mAP) against iteration, one panel per model.

    Args:
        history: Records ``{'iter', 'model', 'mAP', 'classes': {c: AP}}``.
        watch_classes: Classes drawn with thick lines.
    """
    models = sorted({h['model'] for h in history}) or ['']
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4),
                             squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = [h for h in history if h['model'] == model]
        classes = ordered_union(h['classes'] for h in mine)
        steps = [h['iter'] for h in mine]
        for name in classes:
            values = [_nan(h['classes'].get(name)) for h in mine]
            ax.plot(steps, values, marker='o',
                    lw=2.5 if name in watch_classes else 1, label=name)
        ax.plot(steps, [_nan(h['mAP']) for h in mine], 'k--', marker='s',
                label='mAP')
        _label(ax, 'AP@[.5:.95]', f'per-class AP: {model or "model"}')
    fig.tight_layout()
    return fig


def plot_anchor_stats(records: Sequence[dict]) -> Figure:
    """Positives per GT box and the share of GT boxes without any, per class.

    Args:
        records: AnchorMatchStatsHook JSON lines ``{'iter', stage: {class:
            {'pos_per_gt', 'no_pos_share', 'num_gts'}}}``.
    """
    stages = [s for s in ('rpn', 'rcnn') if any(s in r for r in records)]
    fig, axes = plt.subplots(2, max(len(stages), 1),
                             figsize=(6 * max(len(stages), 1), 7),
                             squeeze=False)
    for col, stage in enumerate(stages):
        classes = ordered_union(r.get(stage, {}) for r in records)
        steps = [r.get('iter') for r in records]
        for row, field, label in ((0, 'pos_per_gt', 'positives per GT box'),
                                  (1, 'no_pos_share',
                                   'share of GT boxes with no positive')):
            ax = axes[row][col]
            for name in classes:
                values = [_nan(r.get(stage, {}).get(name, {}).get(field))
                          for r in records]
                ax.plot(steps, values, marker='.', label=name,
                        lw=2 if name == 'all' else 1)
            _label(ax, label, f'{stage.upper()}: {label}')
    fig.tight_layout()
    return fig


def plot_pseudo_label_stats(records: Sequence[dict]) -> Figure:
    """Kept ratio of pseudo-labels: one panel per class, a line per stage.

    The small multiples of :func:`mmext.viz.pseudo_plots.plot_kept_ratio`
    (thresholds in force named per stage, shared y axis), drawn from
    whatever the records hold: lines missing keys leave gaps.

    Args:
        records: PseudoLabelStatsHook JSON lines with ``iter`` and, where
            present, ``classes``, ``stages``, ``thresholds`` and
            ``counts`` / ``kept_ratio`` as {stage: {class: value}}.
    """
    from .pseudo_plots import plot_kept_ratio
    return plot_kept_ratio(records)


def ordered_union(keyed: Iterable[Iterable[str]]) -> List[str]:
    """The keys of several dicts (or lists), each once, in first-seen order.

    Args:
        keyed: E.g. the ``classes`` dicts of successive validations.
    """
    seen: Dict[str, None] = {}
    for keys in keyed:
        seen.update(dict.fromkeys(keys))
    return list(seen)


def _label(ax, ylabel: str, title: str, ncol: int = 1) -> None:
    """The x axis is always the training iteration."""
    ax.set_xlabel('iteration')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=ncol)


def _nan(value) -> float:
    """None (or anything non-numeric) -> NaN, so matplotlib leaves a gap."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')
