"""Plots of tools/compare_runs.py: AP per arm with intervals, AP over training."""
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_class_ap(class_names: Sequence[str], ap: Dict[str, List[float]],
                  intervals: Dict[str, List[Optional[tuple]]], path: str,
                  title: str = '') -> str:
    """Per-class AP per arm (grouped bars) with an interval per bar.

    Args:
        class_names: Classes (x axis).
        ap: arm -> per-class AP (None where undefined).
        intervals: arm -> per-class (low, high) in AP units, or None.
        path: Output PNG.
        title: Axes title.
    """
    arms = list(ap)
    x = np.arange(len(class_names))
    width = 0.8 / max(1, len(arms))
    fig, ax = plt.subplots(figsize=(1.6 * len(class_names) + 2, 4))
    for j, arm in enumerate(arms):
        vals = np.array([np.nan if v is None else v for v in ap[arm]])
        lo = np.array([np.nan if not iv or iv[0] is None else iv[0]
                       for iv in intervals.get(arm, [None] * len(vals))])
        hi = np.array([np.nan if not iv or iv[1] is None else iv[1]
                       for iv in intervals.get(arm, [None] * len(vals))])
        err = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0,
                                                              None)])
        ax.bar(x + (j - (len(arms) - 1) / 2) * width, vals, width,
               label=arm, yerr=np.nan_to_num(err), capsize=3)
    ax.set_xticks(x, class_names, rotation=20)
    ax.set_ylabel('AP')
    ax.set_title(title or 'per-class AP per arm (bars: 95% interval)')
    ax.grid(axis='y', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_ap_progression(class_names: Sequence[str],
                        histories: Dict[str, List[List[dict]]],
                        path: str) -> str:
    """Per-class AP over training: one panel per class, one line per arm
    (the mean over its seeds; thin lines: each seed)."""
    panels = list(class_names) + ['mAP']
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows),
                             squeeze=False)
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for p, name in enumerate(panels):
        ax = axes[p // cols][p % cols]
        for j, (arm, seeds) in enumerate(histories.items()):
            color = colors[j % len(colors)]
            curves = []
            for hist in seeds:
                it = [h['iter'] for h in hist]
                v = [np.nan if h.get(name) is None else h[name] for h in hist]
                ax.plot(it, v, color=color, lw=0.6, alpha=0.5)
                curves.append((it, v))
            if curves and all(c[0] == curves[0][0] for c in curves):
                ax.plot(curves[0][0], np.nanmean([c[1] for c in curves], 0),
                        color=color, lw=2, marker='.', label=arm)
        ax.set_title(name)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for k in range(len(panels), rows * cols):
        axes[k // cols][k % cols].axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
