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
