"""Predictions sanity on planted good/collapsed predictions; the CLI end to end."""
import json
import os
import pickle
import sys

import numpy as np
import pytest
import torch
from helpers import DEMO_CONFIG, ROOT

from mmext.checks.prediction_check import prediction_checks, prediction_stats
from mmext.evaluation.predictions import load_detections
from mmext.data import load_coco
from mmext.utils import run_cli

from check_dataset_faults import copy_dataset, edit_json, labeled_json

sys.path.insert(0, os.path.join(ROOT, 'tools'))
import check_dataset  # noqa: E402


def _write_pkl(path, per_image):
    results = [dict(img_id=int(i), ori_shape=(96, 96), pred_instances=dict(
        bboxes=torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4),
        scores=torch.as_tensor(s, dtype=torch.float32),
        labels=torch.as_tensor(lab, dtype=torch.int64)))
        for i, b, s, lab in per_image]
    with open(path, 'wb') as f:
        pickle.dump(results, f)
    return str(path)


def _val(root):
    return load_coco(os.path.join(root, 'annotations', 'val.json'))


def _perfect(gt):
    return [(i, gt.bboxes()[gt.image_id == i], np.full((gt.image_id == i).sum(), 0.9),
             gt.label[gt.image_id == i]) for i in gt.image_ids]


def _collapsed(gt):
    w, h = gt.widths[0], gt.heights[0]
    box = np.array([[w / 2 - 5, h / 2 - 5, w / 2 + 5, h / 2 + 5]] * 3)
    return [(i, box, np.full(3, 0.9), np.zeros(3, int)) for i in gt.image_ids]


def _checks(root, per_image, tmp_path):
    gt = _val(root)
    dets = load_detections(_write_pkl(tmp_path / 'p.pkl', per_image), gt)
    stats = prediction_stats(dets, gt, score_thr=0.3)
    return stats, {r.name: r for r in prediction_checks(stats, 0.3)}


def test_predictions_on_the_gt_pass(tiny_demo_root, tmp_path):
    stats, found = _checks(tiny_demo_root, _perfect(_val(tiny_demo_root)), tmp_path)
    assert all(r.status == 'pass' for r in found.values()), found
    assert stats.recall_iou50 == 1.0
    assert stats.spread_ratio == pytest.approx(1.0)
    assert stats.own_vs_other == 0.0
    assert (stats.preds_per_image == stats.gt_per_image).all()


def test_collapsed_predictions_warn(tiny_demo_root, tmp_path):
    stats, found = _checks(tiny_demo_root, _collapsed(_val(tiny_demo_root)), tmp_path)
    assert stats.spread_ratio == 0.0
    assert stats.densest_cell_pred == 1.0
    for name in ('predicted centres spread like the GT centres',
                 'predictions not clustered in one place'):
        assert found[name].status == 'warn', name
    assert (stats.preds_per_image == 3).all()


def test_cli_clean_demo_exits_0_and_writes_report(tiny_demo_root, tmp_path, capsys):
    gt = _val(tiny_demo_root)
    pkl = _write_pkl(tmp_path / 'preds.pkl', _perfect(gt))
    out = tmp_path / 'out'
    code = check_dataset.main([DEMO_CONFIG, '--data-root', tiny_demo_root,
                               '--out-dir', str(out), '--num-samples', '2',
                               '--predictions', pkl])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / 'checks.json').read_text())
    assert report['status'] in ('pass', 'info')
    assert report['status_counts']['fail'] == 0
    for name in ('checks.csv', 'pipeline_samples.png', 'class_distribution.png',
                 'predictions.png'):
        assert (out / name).stat().st_size > 0, name
    assert sum(report['predictions']['score_histogram'].values()) == len(gt)
    assert 'name' in printed.splitlines()[0] and 'passed checks' in printed


def test_cli_broken_dataset_exits_1(tiny_demo_root, tmp_path, capsys):
    root = copy_dataset(tiny_demo_root, str(tmp_path / 'data'))
    edit_json(labeled_json(root), lambda d: d['images'][0].update(width=999))
    code = check_dataset.main([DEMO_CONFIG, '--data-root', root, '--out-dir',
                               str(tmp_path / 'out'), '--skip-pipeline'])
    printed = capsys.readouterr().out
    assert code == 1
    assert 'annotation size != image size' in printed and 'fail' in printed
    assert 'annotation 999x' in printed  # the example names the file and sizes


def test_cli_bad_input_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(check_dataset.main, [str(tmp_path / 'missing.py')])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.strip().count('\n') == 0 and 'missing.py' in err


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        check_dataset.parse_args(['--help'])
    assert 'Example:' in capsys.readouterr().out
