"""Plots of PseudoLabelStatsHook records (matplotlib, Agg backend).

Each function takes the records of ``pseudo_label_stats.jsonl`` (as read by
:func:`mmext.runs.pseudo_records.read_records`) and returns a Figure.
"""
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


#: Colour per stage, the same in every kept-ratio panel and threshold line.
STAGE_COLORS = {'initial': 'tab:red', 'rpn': 'tab:orange', 'cls': 'tab:purple',
                'reg': 'tab:green'}


def plot_kept_ratio(records: Sequence[dict],
                    stages: Optional[Sequence[str]] = None,
                    cols: int = 3) -> Figure:
    """Kept ratio (stage count / raw teacher boxes) over training, per class.

    Small multiples: one panel per class, in each one line per stage; the
    legend label names the threshold in force for the class at that stage
    (``cls (thr 0.41)``, or ``cls (thr 0.5->0.41)`` when it changed during
    the run) and a dotted vertical line marks where a threshold changed.
    All panels share the y axis [0, 1.05]. A class whose teacher produced no
    box gets a panel saying so. Records missing keys (as the run report may
    read them) leave gaps, never an error.

    Args:
        records: Records in iteration order.
        stages: Stages to draw (those absent from the records are skipped);
            default every recorded stage. ``raw`` is never drawn: it is the
            denominator (kept ratio 1 by definition).
        cols: Panels per row at most.
    """
    names = record_classes(records)
    recorded = [s for s in record_stages(records) if s != 'raw']
    stages = recorded if stages is None else [s for s in stages
                                              if s in recorded]
    cols = max(1, min(cols, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows),
                             squeeze=False, sharex=True)
    iters = [_nan(r.get('iter')) for r in records]
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        _kept_ratio_panel(ax, records, iters, name, stages)
        _label_outer(ax, row=k // cols, col=k % cols,
                     below=k + cols < len(names))
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis('off')
    if not names:
        axes[0][0].text(0.5, 0.5, 'no pseudo-label records with classes',
                        ha='center', va='center',
                        transform=axes[0][0].transAxes)
    fig.suptitle('kept ratio = pseudo boxes after the stage / raw teacher '
                 'boxes of the class (dotted: a threshold changed; each '
                 'panel scaled to its class)', fontsize=10)
    fig.tight_layout()
    return fig


def _kept_ratio_panel(ax, records: Sequence[dict], iters: Sequence[float],
                      name: str, stages: Sequence[str]) -> None:
    """One class: a line per stage, or a note when it had no raw box."""
    ax.set_title(f'{name}: {raw_box_total(records, name):,} raw teacher '
                 'boxes', fontsize=9)
    ax.grid(alpha=0.3)
    series = {s: kept_ratio_series(records, s, name) for s in stages}
    if not any(np.isfinite(v).any() for v in series.values()):
        ax.text(0.5, 0.5, 'no raw teacher boxes:\nkept ratio undefined',
                ha='center', va='center', transform=ax.transAxes,
                fontsize=9, color='0.4')
        ax.set_ylim(0, 1.05)
        return
    # scaled to the class: kept ratios of 0.01-0.05 on a [0, 1] axis read
    # as flat lines at 0, and they are what changes
    top = max(float(np.nanmax(v)) for v in series.values()
              if np.isfinite(v).any())
    ax.set_ylim(0, min(1.05, max(0.02, 1.15 * top)))
    changes, previous = set(), None
    for k, (stage, values) in enumerate(series.items()):
        history = threshold_history(records, stage, name)
        changes.update(threshold_changes(records, history))
        label = stage
        if any(v is not None for v in history):
            label += f' ({"unc <" if stage == "reg" else "thr"} '
            label += f'{threshold_label(history)})'
        # Equal lines overlap: say so (not for all-zero lines, which the
        # panel's note covers).
        if previous is not None and np.nanmax(values, initial=0) > 0 and \
                np.allclose(values, series[previous], equal_nan=True):
            label += f' = {previous}'
        # Later stages thinner, so a stage that keeps what the previous one
        # kept shows as a line inside the wider one instead of hiding it;
        # no clipping, so lines at 0 are not half under the axis.
        ax.plot(iters, values, marker='.', ms=4, lw=max(1.0, 3.2 - 0.8 * k),
                label=label, color=STAGE_COLORS.get(stage), clip_on=False,
                zorder=2 + k)
        previous = stage
    for x in sorted(changes):
        ax.axvline(x, color='0.4', ls=':', lw=1.2)
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if finite.size and not finite.any():
        ax.text(0.5, 0.5, 'no box kept at any stage', ha='center',
                va='center', transform=ax.transAxes, fontsize=9,
                color='0.4')
    ax.legend(fontsize=7, loc='best', framealpha=0.8)


def _label_outer(ax, row: int, col: int, below: bool) -> None:
    """Axis labels on the outer panels only; tick labels under a panel with
    no panel below it (sharex hides them on all but the last row)."""
    if col == 0:
        ax.set_ylabel('kept / raw')
    if not below:
        ax.set_xlabel('iteration')
        ax.xaxis.set_tick_params(labelbottom=True)


def record_classes(records: Sequence[dict]) -> List[str]:
    """Class names of the records, each once, in first-seen order.

    The ``classes`` lists where present, else the class keys of the
    ``counts`` / ``kept_ratio`` stage dicts.
    """
    seen: Dict[str, None] = {}
    for r in records:
        if isinstance(r.get('classes'), list):
            seen.update(dict.fromkeys(str(c) for c in r['classes']))
            continue
        for key in ('counts', 'kept_ratio'):
            for per_class in _stage_dicts(r, key).values():
                seen.update(dict.fromkeys(per_class))
    return list(seen)


def record_stages(records: Sequence[dict]) -> List[str]:
    """Stages of the records, each once, in first-seen order (``stages``
    lists where present, else the keys of ``counts`` / ``kept_ratio``)."""
    seen: Dict[str, None] = {}
    for r in records:
        if isinstance(r.get('stages'), list):
            seen.update(dict.fromkeys(str(s) for s in r['stages']))
            continue
        for key in ('counts', 'kept_ratio'):
            seen.update(dict.fromkeys(_stage_dicts(r, key)))
    return list(seen)


def kept_ratio_series(records: Sequence[dict], stage: str,
                      name: str) -> np.ndarray:
    """Kept ratio of one class and stage per record (NaN where undefined).

    From ``counts`` (stage / raw) where both are there, else the record's
    ``kept_ratio``: counts are what the ratio means, and the report may get
    records carrying only one of the two.
    """
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        counts = _stage_dicts(r, 'counts')
        kept = _nan(counts.get(stage, {}).get(name))
        raw = _nan(counts.get('raw', {}).get(name))
        if np.isfinite(kept) and np.isfinite(raw):
            out[i] = kept / raw if raw > 0 else np.nan
        else:
            out[i] = _nan(_stage_dicts(r, 'kept_ratio').get(stage, {})
                          .get(name))
    return out


def raw_box_total(records: Sequence[dict], name: str) -> int:
    """Raw teacher boxes of one class over all records (0 when unknown)."""
    values = [_nan(_stage_dicts(r, 'counts').get('raw', {}).get(name))
              for r in records]
    return int(np.nansum(values)) if values else 0


def threshold_history(records: Sequence[dict], stage: str,
                      name: str) -> List[Optional[float]]:
    """The threshold of one class and stage in force at each record.

    None where the record has none for it (absent, a dict, a short list).
    """
    out: List[Optional[float]] = []
    for r in records:
        thresholds = r.get('thresholds')
        value = thresholds.get(stage) if isinstance(thresholds, dict) \
            else None
        classes = r.get('classes')
        # Per-class lists follow the order of the record's own classes.
        if isinstance(value, (list, tuple)) and not (
                isinstance(classes, list) and name in classes):
            out.append(None)
            continue
        c = classes.index(name) if isinstance(value, (list, tuple)) else 0
        try:
            out.append(class_threshold(value, c))
        except (TypeError, ValueError):
            out.append(None)
    return out


def threshold_label(history: Sequence[Optional[float]]) -> str:
    """``0.41``, or ``0.5->0.41`` when it changed (``0.5->...->0.41`` when
    more than once); ``none`` when no record has one."""
    shown: List[str] = []
    for value in history:
        text = _short(value)
        if text is not None and (not shown or shown[-1] != text):
            shown.append(text)
    if not shown:
        return 'none'
    if len(shown) > 2:
        shown = [shown[0], '...', shown[-1]]
    return '->'.join(shown)


def threshold_changes(records: Sequence[dict],
                      history: Sequence[Optional[float]]) -> List[float]:
    """Iterations where a threshold took a new value.

    The first iteration of the record that shows the new value (its
    ``first_iter``, else ``iter``): the change happened in that interval.
    """
    out, last = [], None
    for r, value in zip(records, history):
        text = _short(value)
        if text is None:
            continue
        if last is not None and text != last:
            out.append(_nan(r.get('first_iter', r.get('iter'))))
        last = text
    return [x for x in out if np.isfinite(x)]


def _short(value: Optional[float]) -> Optional[str]:
    """3 significant digits: values that print the same count as unchanged."""
    return None if value is None else f'{value:.3g}'


def _stage_dicts(record: dict, key: str) -> Dict[str, dict]:
    """``record[key]`` as {stage: {class: value}}, dropping malformed parts."""
    value = record.get(key)
    if not isinstance(value, dict):
        return {}
    return {s: v for s, v in value.items() if isinstance(v, dict)}


def _nan(value) -> float:
    """None (or anything non-numeric) -> NaN, so matplotlib leaves a gap."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def class_threshold(value, c: int) -> Optional[float]:
    """Class ``c``'s value of a scalar or per-class threshold (None stays)."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, (list, tuple)):
        return float(value[c]) if c < len(value) else None
    return float(value)


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
    for c, name in enumerate(class_names):
        ax = axes[c // cols][c % cols]
        ax.stairs(hist[c], edges, fill=True, alpha=0.5, label='teacher boxes')
        if tp_hist is not None:
            ax.stairs(tp_hist[c], edges, fill=True, color='tab:green',
                      alpha=0.8, label='match a GT box')
        for key in ('initial', 'rpn', 'cls'):
            color = STAGE_COLORS[key]
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
