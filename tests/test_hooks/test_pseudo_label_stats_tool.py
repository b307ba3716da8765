"""tools/plot_pseudo_stats.py on records written from known scores."""
import csv
import importlib.util
import json
import os

import numpy as np
import pytest

from helpers import ROOT
from mmext.hooks.pseudo_label_record import tally_record
from mmext.hooks.pseudo_label_tally import (ALL_STAGES, ImageGT,
                                            PseudoLabelTally, tally_image)
from mmext.utils import run_cli

NAMES = ['Severe_Rust', 'Broken']
THR = {'initial': 0.5, 'rpn': 0.4, 'cls': 0.4, 'reg': 0.02}


def write_run(work_dir, num_records=3):
    """Records of images whose pseudo boxes are the GT boxes themselves
    (score 0.9, all TP) plus far-away boxes (score 0.3, all FP)."""
    lines = []
    for it in range(num_records):
        tally = PseudoLabelTally(ALL_STAGES, len(NAMES), 100)
        for _ in range(4):
            gt_boxes = np.array([[10, 10, 40, 30], [50, 50, 90, 70]], float)
            gt = ImageGT(gt_boxes, [0, 1], [False, False])
            far = gt_boxes + 200
            bboxes = np.vstack([gt_boxes, far])
            scores = np.array([0.9, 0.92, 0.3, 0.33])
            labels = np.array([0, 1, 0, 1])
            keep = scores > THR['initial']
            boxes = {s: (bboxes, scores, labels) if s == 'raw' else
                     (bboxes[keep], scores[keep], labels[keep])
                     for s in ALL_STAGES}
            tally_image(tally, boxes, gt)
        lines.append(json.dumps(tally_record(tally, NAMES, THR, 10 * it + 10,
                                             10 * it + 1)))
    path = os.path.join(work_dir, 'pseudo_label_stats.jsonl')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'plot_pseudo_stats', os.path.join(ROOT, 'tools/plot_pseudo_stats.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_tables_files_and_thresholds(tmp_path, capsys):
    write_run(str(tmp_path))
    tool = load_tool()
    assert tool.main([str(tmp_path), '--window', '2',
                      '--target-precision', '0.9']) == 0
    out = capsys.readouterr().out
    out_dir = tmp_path / 'plot_pseudo_stats'
    for name in ('kept_ratio.png', 'score_hist.png', 'precision.png',
                 'pseudo_stats.csv', 'pseudo_thresholds.json'):
        assert (out_dir / name).stat().st_size > 0, name
    assert 'iterations 11-30' in out  # the last 2 records
    stats = {r['class']: r for r in csv.DictReader(
        open(out_dir / 'pseudo_stats.csv'))}
    # Half the raw boxes pass 0.5; those are exactly the GT boxes.
    assert float(stats['all']['kept_initial']) == pytest.approx(0.5)
    assert float(stats['Broken']['prec_raw']) == pytest.approx(0.5)
    assert float(stats['Broken']['prec_cls']) == pytest.approx(1.0)
    assert float(stats['Broken']['rec_cls']) == pytest.approx(1.0)
    thr = {r['class']: r for r in json.load(
        open(out_dir / 'pseudo_thresholds.json'))}
    # Precision 0.9 needs the class's FP box (0.30 / 0.33) left out: the
    # lowest 0.01 edge above it keeps only the TP boxes.
    for name, want in (('Severe_Rust', 0.31), ('Broken', 0.34)):
        row = thr[name]
        assert row['thr_for_precision'] == pytest.approx(want)
        assert row['precision'] == 1.0 and row['recall'] == 1.0
    # Kept ratio 0.3 of the raw boxes: the highest edge keeping half of
    # them (the TP half) is the lowest TP score's bin.
    assert thr['Severe_Rust']['thr_for_kept_ratio'] == pytest.approx(0.90)
    assert thr['Broken']['thr_for_kept_ratio'] == pytest.approx(0.92)
    with pytest.raises(SystemExit):
        tool.main(['--help'])
    assert 'Example:' in capsys.readouterr().out


def run_cli_in_process(capsys, *args):
    """The tool's exit code and stderr, through run_cli as from a shell."""
    with pytest.raises(SystemExit) as exc:
        run_cli(load_tool().main, list(args))
    return exc.value.code, capsys.readouterr().err


def test_tool_bad_input(tmp_path, capsys):
    code, err = run_cli_in_process(capsys, str(tmp_path))
    assert code == 2 and 'pseudo_label_stats.jsonl' in err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / 'pseudo_label_stats.jsonl'
    bad.write_text('{"iter": 3}\n')
    code, err = run_cli_in_process(capsys, str(tmp_path))
    assert code == 2 and ':1: not a pseudo-label record' in err
    code, err = run_cli_in_process(capsys, str(tmp_path), '--window', '0')
    assert code == 2 and '--window' in err


def kept_ratio_by_hand(records, stage, name):
    """counts[stage] / counts['raw'] per record, NaN where raw is 0."""
    return [r['counts'][stage][name] / r['counts']['raw'][name]
            if r['counts']['raw'][name] else float('nan') for r in records]


def panels_of(fig):
    """Visible axes by title class name, and each one's lines by label."""
    out = {}
    for ax in fig.axes:
        if not ax.axison:
            continue
        # ' = rpn' (a line equal to the previous stage's) is dropped
        lines = {ln.get_label().split(' = ')[0]: ln for ln in ax.get_lines()
                 if not ln.get_label().startswith('_')}
        out[ax.get_title().split(':')[0]] = (ax, lines)
    return out


def test_kept_ratio_small_multiples(tmp_path):
    from mmext.runs.pseudo_records import read_records
    from mmext.viz.pseudo_plots import plot_kept_ratio
    records = read_records(write_run(str(tmp_path), num_records=4))
    # A class the teacher never predicted, and per-class cls thresholds
    # that change after the second record (as PerClassSoftTeacher's warmup).
    for k, r in enumerate(records):
        r['classes'] = NAMES + ['Chipped']
        for stage in r['stages']:
            r['counts'][stage]['Chipped'] = 0
            r['kept_ratio'][stage]['Chipped'] = None
        r['thresholds']['cls'] = ([0.4, 0.4, 0.4] if k < 2 else
                                  [0.25, 0.4, 0.125])
    # Make one record keep fewer boxes so the lines are not constant.
    records[2]['counts']['cls']['Broken'] = 1
    fig = plot_kept_ratio(records, ('initial', 'rpn', 'cls', 'reg'))
    panels = panels_of(fig)
    assert list(panels) == NAMES + ['Chipped']  # one panel per class
    assert len(fig.axes) == 3  # 3 classes fill one row of 3 columns
    iters = [r['iter'] for r in records]
    for name in NAMES:
        ax, lines = panels[name]
        # scaled to the class's own ratios (kept ratios near 0 stay visible)
        top = max(max(kept_ratio_by_hand(records, st, name))
                  for st in ('initial', 'rpn', 'cls', 'reg'))
        assert ax.get_ylim() == (0, min(1.05, max(0.02, 1.15 * top)))
        stages = [label.split(' ')[0] for label in lines]
        assert stages == ['initial', 'rpn', 'cls', 'reg']
        for label, line in lines.items():
            want = kept_ratio_by_hand(records, label.split(' ')[0], name)
            np.testing.assert_allclose(line.get_ydata(), want)
            np.testing.assert_array_equal(line.get_xdata(), iters)
    # 4 images x 2 raw Broken boxes; the edited record keeps 1 of its 8.
    assert panels['Broken'][1]['cls (thr 0.4)'].get_ydata()[2] == 1 / 8
    # Thresholds: the class's own, last value, and the change when any.
    assert 'initial (thr 0.5)' in panels['Severe_Rust'][1]
    assert 'cls (thr 0.4->0.25)' in panels['Severe_Rust'][1]
    assert 'cls (thr 0.4)' in panels['Broken'][1]  # unchanged for Broken
    assert 'reg (unc < 0.02)' in panels['Broken'][1]
    # every stage keeps the same boxes here, and the legend says so
    assert 'rpn (thr 0.4) = initial' in [
        ln.get_label() for ln in panels['Broken'][0].get_lines()]
    # The change is marked where the record that shows it starts.
    changes = [ln.get_xdata()[0] for ln in panels['Severe_Rust'][0]
               .get_lines() if ln.get_label().startswith('_')]
    assert changes == [records[2]['first_iter']]
    ax, lines = panels['Chipped']
    assert not lines and 'no raw teacher boxes' in ' '.join(
        t.get_text() for t in ax.texts)
    # Default stages: every recorded one but raw (the denominator).
    default = panels_of(plot_kept_ratio(records))
    assert [k.split(' ')[0] for k in default['Broken'][1]] == \
        [s for s in records[-1]['stages'] if s != 'raw']


def test_threshold_label_and_history():
    from mmext.viz.pseudo_plots import threshold_history, threshold_label
    assert threshold_label([0.5, 0.5]) == '0.5'
    assert threshold_label([0.5, 0.41, 0.41]) == '0.5->0.41'
    assert threshold_label([0.5, 0.3, 0.41]) == '0.5->...->0.41'
    assert threshold_label([None, None]) == 'none'
    records = [{'classes': ['a', 'b'], 'thresholds': {'cls': v}}
               for v in (0.5, [0.2, 0.3], {'a': 1}, None, [0.1])]
    records.append({'thresholds': {'cls': [0.7, 0.8]}})  # no classes
    assert threshold_history(records, 'cls', 'b') == [0.5, 0.3, None, None,
                                                      None, None]


@pytest.mark.parametrize('damage', ['nan', 'negative', 'missing_class'])
def test_damaged_record_is_counted_and_the_rest_equals_the_clean_subset(
        tmp_path, capsys, damage):
    """A record with a NaN or negative count, or without a class at a stage,
    is left out with a count; the tables equal those of the file without
    it (issue 24: it used to be summed, or its class silently dropped)."""
    clean, damaged = tmp_path / 'clean', tmp_path / 'damaged'
    clean.mkdir()
    damaged.mkdir()
    path = write_run(str(damaged), num_records=3)
    lines = open(path).read().splitlines()
    record = json.loads(lines[1])
    if damage == 'nan':
        record['counts']['raw']['Broken'] = float('nan')
    elif damage == 'negative':
        record['counts']['cls']['Severe_Rust'] = -4
    else:
        del record['counts']['rpn']['Broken']
    lines[1] = json.dumps(record)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(clean / 'pseudo_label_stats.jsonl', 'w') as f:
        f.write('\n'.join([lines[0], lines[2]]) + '\n')
    tool = load_tool()
    assert tool.main([str(damaged), '--window', '3']) == 0
    assert 'skipped 1 record(s)' in capsys.readouterr().out
    assert tool.main([str(clean), '--window', '3']) == 0
    read = [open(d / 'plot_pseudo_stats' / 'pseudo_stats.csv').read()
            for d in (damaged, clean)]
    assert read[0] == read[1]


def test_records_of_two_runs_in_one_file_are_an_error(tmp_path, capsys):
    path = write_run(str(tmp_path), num_records=2)
    lines = open(path).read().splitlines()
    record = json.loads(lines[1])
    record['classes'] = ['Severe_Rust']
    lines[1] = json.dumps(record)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    code, err = run_cli_in_process(capsys, str(tmp_path))
    assert code == 2 and ':2: classes' in err and 'two runs' in err
