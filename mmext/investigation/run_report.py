"""Collect what a training run wrote and render one self-contained HTML report.

Sources, all inside the run's work_dir (every one optional):

- ``<timestamp>/vis_data/scalars.json``: mmengine's scalar log (JSON lines,
  one per logged step; validation lines have no ``loss``). Several
  timestamps (a resumed run) are merged in time order.
- ``<timestamp>/<timestamp>.log``: the text log; every ``WARNING`` line is
  listed with its time and, when it names one, the iteration.
- ``class_ap_history.json`` (ClassAPTrackerHook),
  ``anchor_match_stats.jsonl`` (AnchorMatchStatsHook),
  ``pseudo_label_stats.jsonl`` (PseudoLabelStatsHook).
- ``investigation/findings.json`` (tools/investigate.py): ranked findings,
  shown first in the report; without it the report says how to make one.

Malformed lines (an unreadable findings.json) are skipped and counted, never
fatal.
"""
import base64
import html
import io
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmext.runs import WorkDir, files
from mmext.runs.scalars import read_jsonl_lenient
from mmext.utils import MMExtError

LOSS_KEY = re.compile(r'(^|_)loss')


@dataclass
class RunData:
    """Everything read from one work_dir.

    Attributes:
        work_dir: The folder read.
        scalars: Key -> list of (step, value), training and validation.
        warnings: ``{'time', 'iter', 'message'}`` per WARNING log line.
        class_ap: ClassAPTrackerHook history records.
        watch_classes: Classes the tracker was told to watch.
        anchor_stats: AnchorMatchStatsHook records.
        pseudo_label_stats: PseudoLabelStatsHook records.
        investigation: ``investigation/findings.json`` normalised by
            :func:`read_investigation`, or None (absent or unreadable).
        skipped: Source -> number of unreadable lines.
    """

    work_dir: str
    scalars: Dict[str, List[Tuple[int, float]]] = field(default_factory=dict)
    warnings: List[dict] = field(default_factory=list)
    class_ap: List[dict] = field(default_factory=list)
    watch_classes: List[str] = field(default_factory=list)
    anchor_stats: List[dict] = field(default_factory=list)
    pseudo_label_stats: List[dict] = field(default_factory=list)
    loss_windows: List[dict] = field(default_factory=list)
    investigation: Optional[dict] = None
    skipped: Dict[str, int] = field(default_factory=dict)

    def series(self, key: str) -> Tuple[List[int], List[float]]:
        """(steps, values) of one scalar key."""
        points = self.scalars.get(key, [])
        return [p[0] for p in points], [p[1] for p in points]


def read_investigation(path: str, skipped: Dict[str, int]
                       ) -> Optional[dict]:
    """``findings.json`` of tools/investigate.py, normalised for rendering.

    Args:
        path: The file.
        skipped: Counter; ``findings.json`` counts the file when it is not a
            JSON object, plus each finding/skip entry that is not an object.

    Returns:
        ``{'problem': {'summary', 'rows'}, 'findings': [...] (rank order),
        'skipped': [...]}`` with the entries as written (keys may be
        missing), or None when the file is unreadable.
    """
    name = os.path.basename(path)
    try:
        with open(path, encoding='utf-8') as f:
            content = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        content = None
    if not isinstance(content, dict):
        skipped[name] = skipped.get(name, 0) + 1
        return None
    problem = content.get('problem')
    problem = problem if isinstance(problem, dict) else {}
    out = {'problem': {'summary': problem.get('summary'),
                       'rows': _objects(problem.get('rows'), name, skipped)},
           'findings': _objects(content.get('findings'), name, skipped),
           'skipped': _objects(content.get('skipped'), name, skipped)}
    out['findings'].sort(key=_rank_key)
    out['dir'] = os.path.dirname(os.path.abspath(path))
    return out


def _rank_key(finding: dict) -> Tuple[bool, float]:
    """Rank order; unranked entries last, in file order (sort is stable)."""
    rank = finding.get('rank')
    ranked = isinstance(rank, (int, float)) and not isinstance(rank, bool)
    return (not ranked, rank if ranked else 0.0)


def _objects(value, name: str, skipped: Dict[str, int]) -> List[dict]:
    """The dict entries of a list (anything else counted in ``skipped``)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    bad = sum(not isinstance(v, dict) for v in items)
    if bad:
        skipped[name] = skipped.get(name, 0) + bad
    return [v for v in items if isinstance(v, dict)]


def load_run(work_dir: str, investigation_dir: Optional[str] = None
             ) -> RunData:
    """Read every monitor output of ``work_dir``.

    Args:
        work_dir: The run's folder.
        investigation_dir: Where ``tools/investigate.py`` wrote its
            ``findings.json`` when not into ``work_dir/investigation``.

    Raises:
        MMExtError: ``work_dir`` is not a folder, or holds nothing to report.
    """
    if not os.path.isdir(work_dir):
        raise MMExtError(f'{work_dir}: not a folder')
    data = RunData(work_dir=work_dir)
    run = WorkDir(work_dir)
    data.scalars = run.scalars(data.skipped)
    data.warnings = run.warnings()
    ap_path = os.path.join(work_dir, files.CLASS_AP_HISTORY)
    if os.path.isfile(ap_path):
        try:
            with open(ap_path) as f:
                content = json.load(f)
            data.class_ap = [h for h in content.get('history', [])
                             if isinstance(h, dict) and 'classes' in h]
            data.watch_classes = list(content.get('watch_classes', []))
        except (json.JSONDecodeError, AttributeError):
            data.skipped[files.CLASS_AP_HISTORY] = 1
    for name, attr in ((files.ANCHOR_MATCH_STATS, 'anchor_stats'),
                       (files.PSEUDO_LABEL_STATS, 'pseudo_label_stats'),
                       (files.LOSS_STABILITY, 'loss_windows')):
        path = os.path.join(work_dir, name)
        if os.path.isfile(path):
            setattr(data, attr, read_jsonl_lenient(path, data.skipped))
    findings_path = (os.path.join(investigation_dir,
                                  os.path.basename(files.FINDINGS))
                     if investigation_dir else
                     os.path.join(work_dir, files.FINDINGS))
    if investigation_dir and not os.path.isfile(findings_path):
        raise MMExtError(f'{findings_path}: no such file (--investigation '
                         'names the folder tools/investigate.py wrote)')
    if os.path.isfile(findings_path):
        data.investigation = read_investigation(findings_path, data.skipped)
    if not (data.scalars or data.warnings or data.class_ap
            or data.anchor_stats or data.pseudo_label_stats
            or data.loss_windows):
        raise MMExtError(f'{work_dir}: no mmengine run found (no '
                         '<timestamp>/vis_data/scalars.json, log or monitor '
                         'files)')
    return data


def loss_series(data: RunData) -> Dict[str, Tuple[List[int], List[float]]]:
    """Training loss components (keys with ``loss``), by name."""
    return {k: data.series(k) for k in data.scalars
            if LOSS_KEY.search(k) and '/' not in k}


def cv_series(data: RunData) -> Dict[str, Tuple[List[int], List[float]]]:
    """LossStabilityHook's logged CVs, by loss name."""
    prefix = 'stability/cv/'
    return {k[len(prefix):]: data.series(k) for k in data.scalars
            if k.startswith(prefix)}


def stability_table(data: RunData, last_n: int = 10) -> List[dict]:
    """Last logged CV per loss plus mean/std of its last ``last_n`` values."""
    import numpy as np
    rows = []
    for name, (steps, values) in sorted(loss_series(data).items()):
        tail = np.asarray(values[-last_n:], dtype=float)
        cv_steps, cvs = cv_series(data).get(name, ([], []))
        rows.append(dict(loss=name, last=float(tail[-1]) if tail.size else
                         None, mean=float(tail.mean()) if tail.size else None,
                         std=float(tail.std()) if tail.size else None,
                         cv=cvs[-1] if cvs else None))
    return rows


def loss_window_rows(data: RunData) -> List[dict]:
    """LossStabilityHook's per-window numbers (loss_stability.jsonl): the
    level, relative noise, rise over the best window and noise ratio that
    its warnings are decided on, one row per window and watched loss."""
    rows = []
    for rec in data.loss_windows:
        losses = rec.get('losses')
        if not isinstance(losses, dict):
            continue
        for key, v in losses.items():
            if not isinstance(v, dict):
                continue
            alarm = [n[:-len('_alarm')] for n in ('level_alarm',
                                                  'noise_alarm') if v.get(n)]
            rows.append({'iter': rec.get('iter'), 'loss': key,
                         'median': v.get('level'),
                         'noise/level': v.get('rel_noise'),
                         'rise vs best': v.get('rise'),
                         'noise ratio': v.get('noise_ratio'),
                         'state': 'warm-up' if rec.get('warmup') else
                         'reference' if v.get('reference') else
                         ', '.join(alarm) or 'ok'})
    return rows


def figure_to_base64_png(fig) -> str:
    """A matplotlib figure as a base64 PNG string (the figure is closed)."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode('ascii')


def missing_losses_note(data: RunData) -> str:
    """Why the report has no loss curve (it never just leaves it out)."""
    bad = data.skipped.get('scalars.json', 0)
    if bad:
        return (f'No loss curve: {bad} line(s) of the run\'s scalars.json '
                'are unreadable and no loss was left to plot.')
    return ('No loss curve: the run has no scalars.json with losses '
            '(<timestamp>/vis_data/scalars.json of mmengine\'s '
            'LocalVisBackend).')


def render_html(data: RunData, band_window: int = 10,
                cv_thr: Optional[float] = None) -> str:
    """The report: one HTML string, plots embedded as base64 PNG.

    Order: the title, the investigation's findings (or a note saying how to
    get them), then under ``Evidence`` the summary and the monitors' plots.

    Args:
        data: What :func:`load_run` read.
        band_window: Logged points per rolling band of the loss plot.
        cv_thr: A CV target to draw on the raw-CV plot (0.03 = 3%); None
            draws none (the raw CV of small batches is noise, see
            LossStabilityHook).
    """
    from mmext.viz import monitor_plots as plots
    # The findings first: what to do; the monitors' plots back them up.
    sections = [f'<h1>Run report: {html.escape(data.work_dir)}</h1>',
                _findings_section(data), '<h2>Evidence</h2>', _summary(data)]
    losses = loss_series(data)
    if losses:
        fig = plots.plot_losses_with_band(losses, band_window,
                                          cv_series(data) or None, cv_thr)
        sections.append(_section('Losses and stability', _img(fig) +
                                 _table(stability_table(data)) +
                                 _table(loss_window_rows(data))))
    else:
        sections.append(_section('Losses and stability', '<p>' + html.escape(
            missing_losses_note(data)) + '</p>'))
    if data.class_ap:
        fig = plots.plot_class_ap_progression(data.class_ap,
                                              data.watch_classes)
        rows = [dict(iter=h['iter'], model=h['model'], mAP=h['mAP'],
                     **h['classes']) for h in data.class_ap]
        sections.append(_section('Per-class AP progression',
                                 _img(fig) + _table(rows)))
    if data.pseudo_label_stats:
        fig = plots.plot_pseudo_label_stats(data.pseudo_label_stats)
        sections.append(_section('Pseudo-label statistics', _img(fig)))
    if data.anchor_stats:
        fig = plots.plot_anchor_stats(data.anchor_stats)
        sections.append(_section('Anchor matching', _img(fig) +
                                 _table(_anchor_rows(data.anchor_stats[-1]))))
    sections.append(_section(f'Warnings ({len(data.warnings)})',
                             _table(data.warnings) if data.warnings else
                             '<p>No warnings were logged.</p>'))
    style = ('body{font-family:sans-serif;margin:2em;max-width:1100px}'
             'table{border-collapse:collapse;font-size:12px}'
             'td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}'
             'td.t{text-align:left}img{max-width:100%}'
             'table{margin:0.5em 0}'
             'div.card{border:1px solid #ccc;border-radius:6px;padding:4px 12px;'
             'margin:10px 0;max-width:1100px;text-align:left}'
             'div.card h3{margin:6px 0}p.meta{color:#555;margin:2px 0}'
             'figure{margin:6px 0}figcaption{font-size:12px;color:#555}'
             'p.note{background:#fff6d5;padding:4px 8px}')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
            f'<title>mmext run report</title><style>{style}</style></head>'
            f'<body>{"".join(sections)}</body></html>')


def _finding_card(finding: dict, gallery_dir: str) -> str:
    """One finding as a card: title, numbers, its pictures, the action with
    its config, what to watch. Missing keys are left out."""
    from mmext.investigation.render import finding_pictures

    def text(key: str) -> str:
        value = finding.get(key)
        return '' if value in (None, '') else html.escape(str(value))
    meta = [text('strength')]
    if isinstance(finding.get('impact'), (int, float)):
        meta.append(f'at most +{finding["impact"]:.3f} '
                    f'{html.escape(str(finding.get("impact_metric", "mAP")))}'
                    ' if fixed')
    if text('tool'):
        meta.append(f'measured by <code>{text("tool")}</code>')
    parts = [f'<div class="card"><h3><span class="rank">'
             f'{text("rank")}.</span> <span>{text("title")}</span></h3>',
             f'<p class="meta">{" &middot; ".join(m for m in meta if m)}</p>']
    if text('evidence'):
        parts.append(f'<p>{text("evidence")}</p>')
    drawn = set(os.listdir(gallery_dir)) if os.path.isdir(gallery_dir) \
        else set()
    classes = finding.get('classes') if isinstance(
        finding.get('classes'), list) else []
    numbers = finding.get('numbers') if isinstance(
        finding.get('numbers'), dict) else {}
    for name in finding_pictures(str(finding.get('rule', '')), classes,
                                 numbers, drawn):
        with open(os.path.join(gallery_dir, name), 'rb') as f:
            data = base64.b64encode(f.read()).decode()
        parts.append(f'<figure><img src="data:image/png;base64,{data}" '
                     f'alt="{html.escape(name)}"><figcaption>'
                     f'{html.escape(name[:-4].replace("_", " "))}'
                     '</figcaption></figure>')
    if text('action'):
        config = (f' (config <code>{text("action_config")}</code>)'
                  if text('action_config') else '')
        parts.append(f'<p><b>Action:</b> {text("action")}{config}</p>')
    if text('monitor'):
        parts.append(f'<p><b>Watch:</b> {text("monitor")}</p>')
    return ''.join(parts) + '</div>'


def _findings_section(data: RunData) -> str:
    """Problem, ranked findings and skipped analyses; or how to get them."""
    inv = data.investigation
    if inv is None:
        broken = 'findings.json' in data.skipped
        note = ('investigation/findings.json could not be read; rerun '
                if broken else 'No investigation yet: run ')
        return (f'<p class="note">{html.escape(note)}<code>tools/'
                f'investigate.py {html.escape(data.work_dir)}</code></p>')
    parts = ['<h2>Findings</h2>']
    summary = inv['problem'].get('summary')
    if summary:
        parts.append(f'<p>{html.escape(str(summary))}</p>')
    parts.append(_table(inv['problem']['rows']))
    if inv['findings']:
        gallery = os.path.join(inv.get('dir', ''), 'gallery')
        parts += [_finding_card(f, gallery) for f in inv['findings']]
    else:
        parts.append('<p>No finding: no analysis found a cause.</p>')
    if inv['skipped']:
        parts.append('<p>Analyses skipped:</p><ul>' + ''.join(
            f'<li>{html.escape(str(s.get("analysis", "?")))}: '
            f'{html.escape(str(s.get("reason", "")))}</li>'
            for s in inv['skipped']) + '</ul>')
    md = os.path.join(data.work_dir, 'investigation', 'report.md')
    if os.path.isfile(md):
        parts.append(f'<p>Full write-up: <code>{html.escape(md)}</code></p>')
    return ''.join(parts)


def _summary(data: RunData) -> str:
    steps, _ = data.series('loss')
    items = [f'training iterations logged: {steps[-1] if steps else 0}',
             f'validations: {len({h["iter"] for h in data.class_ap})}',
             f'warnings: {len(data.warnings)}']
    if data.skipped:
        items.append('unreadable lines skipped: ' + ', '.join(
            f'{k}: {v}' for k, v in sorted(data.skipped.items())))
    return '<ul>' + ''.join(f'<li>{html.escape(i)}</li>' for i in items) + \
        '</ul>'


def _anchor_rows(record: dict) -> List[dict]:
    rows = []
    for stage in ('rpn', 'rcnn'):
        for name, row in (record.get(stage) or {}).items():
            if isinstance(row, dict):
                rows.append(dict(stage=stage, cls=name, **row))
    return rows


def _section(title: str, body: str) -> str:
    """A part of the evidence (under the ``Evidence`` heading)."""
    return f'<h3>{html.escape(title)}</h3>{body}'


def _img(fig) -> str:
    return f'<img src="data:image/png;base64,{figure_to_base64_png(fig)}">'


def _cell(value) -> str:
    if isinstance(value, float):
        # one format per table: 3 decimals (0.076 and 0.187, not 0.1866)
        text = (f'{value:.3f}' if value == 0 or 0.001 <= abs(value) < 1e4
                else f'{value:.2e}')
        return f'<td>{text}</td>'
    if value is None:
        return '<td>-</td>'
    return f'<td class="t">{html.escape(str(value))}</td>'


def _table(rows: List[dict]) -> str:
    if not rows:
        return ''
    columns: List[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    head = ''.join(f'<th>{html.escape(c)}</th>' for c in columns)
    body = ''.join('<tr>' + ''.join(_cell(r.get(c)) for c in columns) +
                   '</tr>' for r in rows)
    return f'<table><tr>{head}</tr>{body}</table>'


def write_report(data: RunData, out_path: Optional[str] = None,
                 band_window: int = 10, cv_thr: Optional[float] = None
                 ) -> str:
    """Write the HTML report of what :func:`load_run` read.

    Args:
        data: The run.
        out_path: Output file; default ``<work_dir>/report/report.html``.
        band_window: See :func:`render_html`.
        cv_thr: See :func:`render_html`.

    Returns:
        The path written.
    """
    out_path = out_path or os.path.join(data.work_dir, 'report',
                                        'report.html')
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write(render_html(data, band_window, cv_thr))
    return out_path
