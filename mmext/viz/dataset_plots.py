"""Plots of tools/check_dataset.py: samples through the pipeline, classes, predictions."""
from typing import Dict, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


def _displayable(img: np.ndarray) -> np.ndarray:
    """An mmcv (BGR) image as RGB floats in [0, 1], whatever its dtype/range."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., ::-1] if arr.shape[2] == 3 else arr[..., :1].repeat(3, 2)
    lo, hi = float(arr.min()), float(arr.max())
    scale = 255.0 if hi > 1.0 else 1.0
    return np.clip(arr / scale if lo >= 0 else (arr - lo) / max(hi - lo, 1e-9), 0, 1)


def plot_pipeline_samples(samples: Sequence, path: str) -> str:
    """Grid of samples: one row each, the loaded image then every branch.

    Args:
        samples: :class:`mmext.checks.pipeline_check.DrawnSample` objects
            (``title`` and ``panels`` of ``(caption, image, boxes)``).
        path: Output PNG.

    Returns:
        ``path``.
    """
    rows = max(1, len(samples))
    cols = max([len(s.panels) for s in samples] or [1])
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis('off')
    for r, sample in enumerate(samples):
        for c, (caption, img, boxes) in enumerate(sample.panels):
            ax = axes[r, c]
            ax.imshow(_displayable(img))
            for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                       edgecolor='lime', linewidth=1))
            h, w = np.asarray(img).shape[:2]
            title = f'{sample.title}\n' if c == 0 else '\n'
            ax.set_title(f'{title}{caption} {w}x{h}, {len(boxes)} boxes', fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_class_distribution(distribution: Dict[str, Dict[str, int]], path: str) -> str:
    """Grouped bars: boxes per class, one group of bars per split.

    Args:
        distribution: ``{scope: {class name: box count}}``.
        path: Output PNG.
    """
    scopes = list(distribution)
    classes = list(next(iter(distribution.values()), {}))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(classes)), 3.5))
    width = 0.8 / max(1, len(scopes))
    x = np.arange(len(classes))
    for k, scope in enumerate(scopes):
        counts = [distribution[scope].get(c, 0) for c in classes]
        ax.bar(x + k * width, counts, width, label=scope)
    ax.set_xticks(x + width * (len(scopes) - 1) / 2)
    ax.set_xticklabels(classes, rotation=30, ha='right', fontsize=8)
    ax.set_ylabel('boxes (not ignored)')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_prediction_sanity(pred_centres: np.ndarray, gt_centres: np.ndarray,
                           scores: np.ndarray, per_image: Tuple[np.ndarray, np.ndarray],
                           score_thr: float, path: str) -> str:
    """Centres of predictions and GT, score histogram, boxes per image.

    Args:
        pred_centres: (P, 2) predicted centres as image fractions.
        gt_centres: (G, 2) ground-truth centres as image fractions.
        scores: Every prediction's score.
        per_image: (predictions per image, GT boxes per image).
        score_thr: Threshold the centres and counts used.
        path: Output PNG.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    ax = axes[0]
    ax.scatter(gt_centres[:, 0], gt_centres[:, 1], s=6, c='tab:green', label='GT')
    ax.scatter(pred_centres[:, 0], pred_centres[:, 1], s=6, c='tab:red', alpha=0.5,
               label=f'pred (score >= {score_thr:g})')
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_xlabel('x / image width')
    ax.set_ylabel('y / image height')
    ax.set_title('box centres')
    ax.legend(fontsize=7)
    axes[1].hist(scores, bins=20, range=(0, 1), color='tab:blue')
    axes[1].axvline(score_thr, color='k', linestyle='--', linewidth=1)
    axes[1].set_xlabel('score')
    axes[1].set_ylabel('predictions')
    axes[1].set_title('score histogram')
    preds, gts = per_image
    top = int(max([1] + list(preds) + list(gts)))
    bins = np.arange(top + 2) - 0.5
    axes[2].hist([preds, gts], bins=bins, label=['pred', 'GT'],
                 color=['tab:red', 'tab:green'])
    axes[2].set_xlabel('boxes per image')
    axes[2].set_ylabel('images')
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

