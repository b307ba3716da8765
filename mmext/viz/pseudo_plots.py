"""Plots of PseudoLabelStatsHook records (matplotlib, Agg backend).

Each function takes the records of ``pseudo_label_stats.jsonl`` (as read by
:func:`mmext.hooks.pseudo_label_record.read_records`) and returns a Figure.
"""
from typing import Dict, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def plot_kept_ratio(records: Sequence[dict],
                    stages: Sequence[str] = ('initial', 'cls')) -> Figure:
    """Kept ratio (stage count / raw teacher count) per class over training.

    Args:
        records: Records in iteration order.
        stages: One panel per stage (those absent from the records are
            skipped).
    """
    stages = [s for s in stages if s in records[-1]['stages']]
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 4),
                             squeeze=False)
    for ax, stage in zip(axes[0], stages):
        thr = format_threshold(records[-1]['thresholds'].get(stage))
        _per_class_lines(ax, records, 'kept_ratio', stage,
                         f'kept ratio after {stage} (thr {thr})')
        ax.set_ylabel('kept / raw teacher boxes')
    fig.tight_layout()
    return fig


def class_threshold(value, c: int) -> Optional[float]:
    """Class ``c``'s value of a scalar or per-class threshold (None stays)."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, (list, tuple)):
        return float(value[c]) if c < len(value) else None
    return float(value)


def format_threshold(value) -> str:
    """A threshold for a title: ``0.5``, or ``0.18-0.5`` for a per-class list."""
    if isinstance(value, (list, tuple)) and value:
        lo, hi = min(value), max(value)
        return f'{lo:.2g}' if lo == hi else f'{lo:.2g}-{hi:.2g} per class'
    return 'none' if value is None else f'{value:g}'


def plot_thresholds(records: Sequence[dict],
                    stages: Sequence[str] = ('initial', 'rpn', 'cls')
                    ) -> Figure:
    """Per-class pseudo-label thresholds in force over training.

    One panel per stage, one line per class; the value drawn at a record is
    the threshold in force at its last iteration.
    """
    stages = [s for s in stages if records[-1]['thresholds'].get(s)
              is not None]
    fig, axes = plt.subplots(1, max(1, len(stages)),
                             figsize=(5 * max(1, len(stages)), 3.6),
                             squeeze=False)
    iters = [r['iter'] for r in records]
    names = records[-1]['classes']
    for ax, stage in zip(axes[0], stages):
        for c, name in enumerate(names):
            values = [class_threshold(r['thresholds'].get(stage), c)
                      for r in records]
            ax.plot(iters, [np.nan if v is None else v for v in values],
                    marker='.', label=name)
        ax.set_title(f'{stage} threshold per class')
        ax.set_xlabel('iteration')
        ax.set_ylabel('score threshold')
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _per_class_lines(ax, records: Sequence[dict], key: str, stage: str,
                     title: str) -> None:
    """One line per class of ``record[key][stage][class]`` over iterations
    (gaps where the value is undefined)."""
    iters = [r['iter'] for r in records]
    for name in records[-1]['classes']:
        values = [r[key][stage].get(name) for r in records]
        ax.plot(iters, [np.nan if v is None else v for v in values],
                marker='.', label=name)
    ax.set_title(title)
    ax.set_xlabel('iteration')
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_score_histograms(hist: np.ndarray,
                          class_names: Sequence[str],
                          thresholds: Dict[str, object],
                          tp_hist: Optional[np.ndarray] = None,
                          recommended: Optional[Sequence[dict]] = None,
                          title: str = '') -> Figure:
    """Raw teacher score histogram per class, with the thresholds.

    Args:
        hist: (C, B) raw score counts on [0, 1].
        class_names: Class names.
        thresholds: ``initial``/``rpn``/``cls`` thresholds, drawn as lines.
        tp_hist: (C, B) boxes that match a GT box (drawn on top), or None.
        recommended: Rows of ``recommend_thresholds``; their thresholds are
            drawn dashed.
        title: Figure title.
    """
    num, bins = len(class_names), hist.shape[1]
    cols = min(num, 3)
    rows = (num + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows),
                             squeeze=False)
    edges = np.linspace(0, 1, bins + 1)
    colors = {'initial': 'tab:red', 'rpn': 'tab:orange', 'cls': 'tab:purple'}
    for c, name in enumerate(class_names):
        ax = axes[c // cols][c % cols]
        ax.stairs(hist[c], edges, fill=True, alpha=0.5, label='teacher boxes')
        if tp_hist is not None:
            ax.stairs(tp_hist[c], edges, fill=True, color='tab:green',
                      alpha=0.8, label='match a GT box')
        for key, color in colors.items():
            value = class_threshold(thresholds.get(key), c)
            if value is not None:
                ax.axvline(value, color=color, lw=1, label=f'{key} {value:g}')
        if recommended:
            for key, style in (('thr_for_precision', '--'),
                               ('thr_for_kept_ratio', ':')):
                value = recommended[c].get(key)
                if value is not None:
                    ax.axvline(value, color='k', ls=style, lw=1,
                               label=f'{key} {value:.2f}')
        ax.set_title(f'{name}: {int(hist[c].sum())} boxes')
        ax.set_xlabel('teacher score')
        ax.set_xlim(0, 1)
        ax.legend(fontsize=6)
    for k in range(num, rows * cols):
        axes[k // cols][k % cols].axis('off')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_precision(records: Sequence[dict], stage: str = 'cls') -> Figure:
    """Per-class precision and recall of a stage over training (needs GT)."""
    with_gt = [r for r in records if 'precision' in r]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key in zip(axes, ('precision', 'recall')):
        _per_class_lines(ax, with_gt, key, stage,
                         f'{key} of pseudo boxes after {stage} (IoU >= 0.5)')
    fig.tight_layout()
    return fig
