"""Plots of anchor_fit: box shapes against anchor ratios, coverage per class."""
from typing import Dict, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_ratio_histograms(ratios_by_class: Dict[str, np.ndarray],
                          current: Sequence[float],
                          recommended: Optional[Sequence[float]],
                          path: str) -> str:
    """Per-class histogram of box ratio h/w on a log axis, with anchor lines.

    Args:
        ratios_by_class: Box ratios h/w per class name.
        current: Current anchor ratios (dashed red lines).
        recommended: Recommended ratios (solid green lines), or None.
        path: Output PNG file.
    """
    names = list(ratios_by_class)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    every = np.concatenate([r for r in ratios_by_class.values() if len(r)] or [np.ones(1)])
    marks = list(current) + list(recommended or [])
    lo = min(every.min(), min(marks)) / 1.2
    hi = max(every.max(), max(marks)) * 1.2
    bins = np.geomspace(lo, hi, 40)
    for ax, name in zip(axes.flat, names):
        r = ratios_by_class[name]
        # stairs of np.histogram: one artist, not one patch per bin
        ax.stairs(np.histogram(r, bins=bins)[0], bins, fill=True, color='0.6')
        ax.set_xscale('log')
        _ratio_ticks(ax, lo, hi)
        for k, v in enumerate(current):
            ax.axvline(v, color='tab:red', ls='--', lw=1, label='current' if k == 0 else None)
        for k, v in enumerate(recommended or []):
            ax.axvline(v, color='tab:green', lw=1.2, label='recommended' if k == 0 else None)
        ax.set_title(f'{name} (n={len(r)})', fontsize=9)
        ax.set_xlabel('box ratio h/w (log)', fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis('off')
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _ratio_ticks(ax, lo: float, hi: float) -> None:
    """At most ~6 plain-number ticks on a log ratio axis: matplotlib's minor
    labels overlap when the ratios span less than a decade."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
    candidates = np.array([0.05, 0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 1.0, 1.5, 2.0,
                           3.0, 4.0, 5.0, 10.0, 20.0])
    ticks = candidates[(candidates >= lo) & (candidates <= hi)]
    if len(ticks) > 6:
        ticks = ticks[::int(np.ceil(len(ticks) / 6))]
    if len(ticks) < 2:
        ticks = np.geomspace(lo, hi, 4)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([f'{t:.2g}' for t in ticks], fontsize=7)


def plot_coverage_before_after(names: Sequence[str], before: Dict[str, Sequence[float]],
                               after: Optional[Dict[str, Sequence[float]]],
                               path: str) -> str:
    """Grouped bars per class: coverage with the current and new anchors.

    Args:
        names: Class names (bar groups).
        before: Metric name -> value per class, current anchors; one panel
            per metric (e.g. ``'share of GTs with max IoU >= 0.7'``).
        after: The same with the recommended anchors, or None.
        path: Output PNG file.
    """
    metrics = list(before)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.6), squeeze=False)
    x = np.arange(len(names))
    width = 0.4 if after else 0.7
    for ax, metric in zip(axes.flat, metrics):
        ax.bar(x - (width / 2 if after else 0), before[metric], width, label='current',
               color='tab:red', alpha=0.7)
        if after:
            ax.bar(x + width / 2, after[metric], width, label='recommended',
                   color='tab:green', alpha=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha='right', fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
