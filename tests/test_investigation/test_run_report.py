"""Run report: reading a work_dir, the HTML, the CLI, and a Chromium look."""
import base64
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile

import numpy as np
import pytest

from mmext.investigation.run_report import (load_run, render_html, stability_table,
                                       write_report)
from mmext.utils import MMExtError
from mmext.viz.monitor_plots import rolling_band

CLASSES = ['Severe_Rust', 'Chipped', 'Broken']


def _write_lines(path, records, bad_lines=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
        f.write('{not json\n' * bad_lines)


def _losses(n, seed=0):
    rng = np.random.default_rng(seed)
    return [float(v) for v in 3.0 * np.exp(-np.arange(n) / 20)
            + rng.normal(0, 0.05, n)]


@pytest.fixture
def work_dir(tmp_path):
    """A work_dir as a resumed run with all monitors leaves it."""
    root = tmp_path / 'run'
    first, second = _losses(61), _losses(61, seed=1)
    # first run logged steps 10..40, the resumed one 30..60 (overlap 30, 40)
    _write_lines(str(root / '20260101_000000/vis_data/scalars.json'),
                 [dict(loss=first[i], sup_loss_cls=first[i] / 2, step=i,
                       iter=i) for i in range(10, 41, 10)] +
                 [{'teacher/coco/bbox_mAP': 0.1, 'step': 40}])
    _write_lines(str(root / '20260102_000000/vis_data/scalars.json'),
                 [dict(loss=second[i], sup_loss_cls=second[i] / 2, step=i,
                       **{'stability/cv/loss': 0.01 * i}) for i in
                  range(30, 61, 10)], bad_lines=1)
    (root / '20260101_000000/20260101_000000.log').write_text(
        '2026/01/01 00:00:01 - mmengine - INFO - Iter(train) [ 20/60]  '
        'loss: 2.0\n'
        '2026/01/01 00:00:02 - mmengine - WARNING - something generic\n'
        '2026/01/01 00:00:03 - mmengine - WARNING - LossStabilityHook: '
        'iter 30: CV of loss over the last 10 iterations is 5.00% > 3.00%\n'
        '2026/01/01 00:00:04 - mmengine - INFO - all fine\n')
    (root / '20260102_000000/20260102_000000.log').write_text(
        '2026/01/02 00:00:05 - mmengine - ERROR - evaluation results are '
        'empty\n')
    history = [dict(iter=it, model=m, mAP=0.1 * k,
                    classes={c: 0.05 * k + 0.01 * j
                             for j, c in enumerate(CLASSES)})
               for k, it in enumerate((20, 40, 60), 1)
               for m in ('student', 'teacher')]
    (root / 'class_ap_history.json').write_text(json.dumps(
        dict(watch_classes=CLASSES[:2], history=history)))
    _write_lines(str(root / 'anchor_match_stats.jsonl'),
                 [{'iter': it, 'rpn': {c: dict(num_gts=4, pos_per_gt=3.0,
                                                no_pos_share=0.25)
                                       for c in CLASSES + ['all']},
                   'rcnn': {'all': dict(num_gts=4, pos_per_gt=None,
                                        no_pos_share=None)}}
                  for it in (20, 40)], bad_lines=2)
    # PseudoLabelStatsHook lines with keys missing here and there
    _write_lines(str(root / 'pseudo_label_stats.jsonl'),
                 [{'iter': 20, 'kept_ratio': {'cls': {'Chipped': 0.1}}},
                  {'iter': 40, 'counts': {'cls': {'Chipped': 3}}},
                  {'iter': 60}])
    return str(root)


def test_load_run_merges_and_counts(work_dir):
    data = load_run(work_dir)
    steps, values = data.series('loss')
    assert steps == [10, 20, 30, 40, 50, 60]
    second = _losses(61, seed=1)
    assert values[2:] == [second[i] for i in (30, 40, 50, 60)]  # later wins
    assert data.series('teacher/coco/bbox_mAP') == ([40], [0.1])
    assert data.skipped == {'scalars.json': 1, 'anchor_match_stats.jsonl': 2}
    assert [w['iter'] for w in data.warnings] == [20, 30, None]
    assert [w['level'] for w in data.warnings] == ['WARNING', 'WARNING',
                                                   'ERROR']
    assert len(data.class_ap) == 6 and data.watch_classes == CLASSES[:2]
    assert len(data.pseudo_label_stats) == 3


def test_stability_table_and_band_are_plain_statistics(work_dir):
    data = load_run(work_dir)
    row = next(r for r in stability_table(data, last_n=3)
               if r['loss'] == 'loss')
    tail = data.series('loss')[1][-3:]
    assert row['mean'] == pytest.approx(statistics.fmean(tail))
    assert row['std'] == pytest.approx(statistics.pstdev(tail))
    assert row['cv'] == pytest.approx(0.6)  # the hook's last logged CV
    values = [1.0, 2.0, 4.0, 8.0]
    mean, std = rolling_band(values, 2)
    assert mean.tolist() == [1.0, 1.5, 3.0, 6.0]
    assert std.tolist() == [0.0, 0.5, 1.0, 2.0]


def test_html_is_self_contained(work_dir):
    page = render_html(load_run(work_dir))
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4  # losses, class AP, pseudo labels, anchors
    assert all(base64.b64decode(i)[:8] == b'\x89PNG\r\n\x1a\n'
               for i in images)
    assert 'src="http' not in page and '<script' not in page
    assert 'Warnings (3)' in page and 'CV of loss over the last 10' in page


def test_missing_parts_are_left_out(tmp_path, work_dir):
    for name in ('class_ap_history.json', 'anchor_match_stats.jsonl',
                 'pseudo_label_stats.jsonl'):
        os.remove(os.path.join(work_dir, name))
    page = render_html(load_run(work_dir))
    assert page.count('data:image/png') == 1
    assert 'Pseudo-label' not in page and 'Anchor matching' not in page
    with pytest.raises(MMExtError, match='no mmengine run found'):
        load_run(str(tmp_path))
    with pytest.raises(MMExtError, match='not a folder'):
        load_run(str(tmp_path / 'absent'))


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    from helpers import ROOT
    from mmext.utils import run_cli
    spec = importlib.util.spec_from_file_location(
        'report_tool', os.path.join(ROOT, 'tools', 'report.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tool.main, [str(tmp_path / 'absent')])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().count('\n') == 0 and 'absent: not a folder' in err


def test_chromium_renders_the_report(work_dir, tmp_path):
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    if browser is None:
        pytest.skip('chromium not installed (Debian: apt-get install '
                    'chromium); the report was checked by screenshot once')
    html_path = write_report(load_run(work_dir))
    shot = str(tmp_path / 'shot.png')
    subprocess.run(
        [browser, '--headless', '--no-sandbox', '--disable-gpu',
         '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run',
         f'--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}',
         f'--screenshot={shot}', '--window-size=1000,2400',
         f'file://{html_path}'], capture_output=True, timeout=120)
    import matplotlib.image
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1000)
    # the plots drew something: many distinct colours, not a blank page
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(
        -1, 3), axis=0)
    assert len(colours) > 50


def _finding(rank, title, **extra):
    row = dict(rank=rank, rule=f'rule{rank}', title=title,
               strength='strong', impact=0.04, classes=['Broken'],
               evidence=f'evidence {rank}: AP 0.12 vs 0.40', tool='tools/x.py',
               cause='cause', action=f'action {rank}',
               action_config=f'work_dirs/run/fix{rank}.py',
               monitor=f'monitor {rank}')
    row.update(extra)
    return row


def _write_findings(work_dir, content):
    folder = os.path.join(work_dir, 'investigation')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'findings.json'), 'w') as f:
        f.write(content if isinstance(content, str) else json.dumps(content))


def test_findings_open_the_report(work_dir):
    _write_findings(work_dir, dict(
        work_dir=work_dir,
        problem=dict(summary='Broken AP 0.12 is far below the mean 0.40',
                     rows=[dict(**{'class': 'Broken'}, ap=0.12, ap50=None)]),
        # file order is not rank order; one entry lacks most keys
        findings=[_finding(3, 'third'), _finding(1, 'first <b>bold</b>'),
                  {'rank': 2, 'title': 'second, sparse'}, 'not a dict'],
        skipped=[dict(analysis='anchor_fit', reason='no annotation file')]))
    data = load_run(work_dir)
    assert [f['rank'] for f in data.investigation['findings']] == [1, 2, 3]
    assert data.skipped['findings.json'] == 1  # the non-dict entry
    page = render_html(data)
    findings_at = page.index('<h2>Findings</h2>')
    assert findings_at < page.index('<img') and findings_at < page.index(
        'training iterations logged')  # before the summary and every plot
    assert findings_at < page.index('<h2>Evidence</h2>') < page.index('<img')
    assert page.index('Broken AP 0.12 is far below') < page.index(
        'first &lt;b&gt;bold&lt;/b&gt;')
    assert '<b>bold</b>' not in page
    titles = [page.index(t) for t in ('first &lt;b&gt;', 'second, sparse',
                                      '>third<')]
    assert titles == sorted(titles)
    assert 'work_dirs/run/fix1.py' in page and 'monitor 3' in page
    assert 'anchor_fit: no annotation file' in page
    assert 'No investigation yet' not in page


@pytest.mark.parametrize('content', ['{not json', '[1, 2]'])
def test_broken_findings_are_counted_not_fatal(work_dir, content):
    _write_findings(work_dir, content)
    data = load_run(work_dir)
    assert data.investigation is None
    assert data.skipped['findings.json'] == 1
    page = render_html(data)
    assert '<h2>Findings</h2>' not in page and 'findings.json: 1' in page
    assert 'could not be read' in page and page.count('data:image/png') == 4


def test_no_investigation_says_how(work_dir):
    page = render_html(load_run(work_dir))
    note = page.index('No investigation yet: run <code>tools/investigate.py')
    assert note < page.index('<img')


def test_report_pseudo_plot_is_one_panel_per_class(work_dir):
    from mmext.viz.monitor_plots import plot_pseudo_label_stats
    records = load_run(work_dir).pseudo_label_stats
    records.append({'iter': 80, 'classes': ['Chipped', 'Broken'],
                    'stages': ['raw', 'cls'],
                    'thresholds': {'cls': [0.6, 0.7]},
                    'counts': {'raw': {'Chipped': 10, 'Broken': 0},
                               'cls': {'Chipped': 4, 'Broken': 0}}})
    fig = plot_pseudo_label_stats(records)
    visible = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title().split(':')[0] for ax in visible] == [
        'Chipped', 'Broken']
    chipped = [ln for ln in visible[0].get_lines()
               if not ln.get_label().startswith('_')]
    assert [ln.get_label() for ln in chipped] == ['cls (thr 0.6)']
    # kept_ratio where only it is given; counts (4 / 10) where they are;
    # a gap where the raw count is missing or the record has neither
    np.testing.assert_allclose(chipped[0].get_ydata(),
                               [0.1, np.nan, np.nan, 0.4])
    assert 'no raw teacher boxes' in visible[1].texts[0].get_text()


def test_finding_cards_embed_their_gallery_pictures(work_dir):
    """Each finding is a card; a dominant-error finding shows its type's
    crops of its classes from investigation/gallery/, and nothing else."""
    import matplotlib.pyplot as plt
    _write_findings(work_dir, dict(
        work_dir=work_dir, problem=dict(summary='s', rows=[]),
        findings=[_finding(1, 'loose boxes', rule='dominant_error',
                           classes=['Broken', 'Chipped'],
                           numbers=dict(type='localization'))]))
    gallery = os.path.join(work_dir, 'investigation', 'gallery')
    os.makedirs(gallery)
    for name in ('Broken_localization.png', 'Broken_missed.png'):
        fig = plt.figure(figsize=(1, 1))
        fig.savefig(os.path.join(gallery, name))
        plt.close(fig)
    page = render_html(load_run(work_dir))
    card = page[page.index('<div class="card">'):page.index('<h2>Evidence')]
    assert card.count('<img') == 1 and 'Broken localization' in card
    assert 'Broken missed' not in card
    assert 'at most +0.040 mAP if fixed' in card
    assert '<b>Action:</b> action 1' in card and 'fix1.py' in card
    assert '<b>Watch:</b> monitor 1' in card
