"""Plots of the diagnosis tools: PR and F1 curves, error and efficiency bars.

Every function writes one PNG and returns its path.
"""
from typing import Dict, List, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pr_curves(curves: Sequence, path: str) -> str:
    """Precision-recall curve of every class (every detection's score).

    Args:
        curves: :class:`~mmext.evaluation.threshold_sweep.ClassCurve` objects
            (``pr_recall``, ``pr_precision``, ``name``, ``ap50``).
        path: Output PNG.
    """
    fig, ax = plt.subplots(figsize=(6, 5))
    for c in curves:
        if not len(c.pr_recall):
            continue
        style = dict(color='black', lw=2) if c.name == 'all' else dict(lw=1)
        ax.plot(c.pr_recall, c.pr_precision,
                label=f'{c.name} (AP50 {c.ap50:.3f})', **style)
    ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1.0),
           ylim=(0, 1.02), title='Precision-recall (all detections)')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_f1_vs_threshold(thresholds: np.ndarray, curves: Sequence,
                         path: str) -> str:
    """F1, precision and recall of 'all' and F1 per class vs the threshold.

    Args:
        thresholds: Score grid.
        curves: ClassCurve objects (the last named 'all').
        path: Output PNG.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for c in curves:
        style = dict(color='black', lw=2) if c.name == 'all' else dict(lw=1)
        axes[0].plot(thresholds, c.f1, label=c.name, **style)
    axes[0].set(xlabel='score threshold', ylabel='F1', title='F1 per class')
    overall = [c for c in curves if c.name == 'all']
    if overall:
        c = overall[0]
        axes[1].plot(thresholds, c.precision, label='precision')
        axes[1].plot(thresholds, c.recall, label='recall')
        axes[1].plot(thresholds, c.f1, label='F1', color='black')
        axes[1].plot(thresholds, c.detection_rate, '--',
                     label='detection rate (images)')
    axes[1].set(xlabel='score threshold', title='all classes')
    for ax in axes:
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_error_breakdown(rows: List[Dict], error_types: Sequence[str],
                         path: str) -> str:
    """Grouped bars: the AP50 each error type would add if fixed, per class.

    Side by side, not stacked: each bar is a separate what-if (fixing one
    type alone), and the gains of several types do not add up.

    Args:
        rows: Dicts with ``class`` and ``dap_<type>`` per error type.
        error_types: The error type names, in bar order.
        path: Output PNG.
    """
    names = [r['class'] for r in rows]
    width = 0.8 / max(len(error_types), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(rows)), 4.5))
    x = np.arange(len(rows))
    for i, t in enumerate(error_types):
        vals = [max(r.get(f'dap_{t}') or 0.0, 0.0) for r in rows]
        ax.bar(x + (i - (len(error_types) - 1) / 2) * width, vals, width,
               label=t)
    ax.set_xticks(x, names)
    ax.set(ylabel='AP50 gained if fixed alone',
           title='Error breakdown (TIDE-style; each bar a separate fix, '
           'they do not add up)')
    # outside the axes: a legend inside hid a bar
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis='y')
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str],
                   path: str) -> str:
    """Heat map of classification errors: GT class (rows) taken for another
    class (columns), with the count in each cell."""
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.1 * k + 2.5, 0.9 * k + 1.8))
    ax.imshow(matrix, cmap='Reds')
    ax.set_xticks(range(k), class_names, rotation=30, ha='right')
    ax.set_yticks(range(k), class_names)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha='center', va='center',
                    color='white' if matrix[i, j] > matrix.max() / 2 else
                    'black', fontsize=9)
    ax.set(xlabel='taken for (detection class)', ylabel='GT class',
           title='Classification errors (IoU >= 0.5, other class)')
    return _save(fig, path)


def plot_class_efficiency(rows: List[Dict], path: str) -> str:
    """Bars of efficiency (AP / share of boxes) per class, 1x marked.

    Args:
        rows: Dicts with ``source``, ``class`` and ``efficiency``.
        path: Output PNG.
    """
    sources = sorted({r['source'] for r in rows})
    classes = list(dict.fromkeys(r['class'] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(classes)), 4.5))
    width = 0.8 / max(len(sources), 1)
    x = np.arange(len(classes))
    for i, src in enumerate(sources):
        eff = {r['class']: r['efficiency'] for r in rows if r['source'] == src}
        vals = [eff.get(c) if eff.get(c) is not None else 0.0 for c in classes]
        ax.bar(x + i * width, vals, width, label=src)
    ax.axhline(1.0, color='black', lw=1, ls='--')
    ax.set_xticks(x + width * (len(sources) - 1) / 2, classes)
    ax.set(ylabel='AP / share of boxes', title='Per-class efficiency')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis='y')
    return _save(fig, path)
