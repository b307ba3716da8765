"""Error breakdown: known error types on constructed cases, dAP by pycocotools."""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis_fixtures import load_tool
from mmext.evaluation.error_breakdown import ERROR_TYPES, error_breakdown
from mmext.evaluation.predictions import load_detections
from mmext.data import load_coco

# One 100x100 image. GT (xywh): A at gt0, B at gt1, A at gt2 (nobody finds it).
GT = [(1, 10, 10, 30, 30), (2, 60, 60, 30, 30), (1, 60, 10, 30, 20)]
# Detections (cat, xywh, score) with the error each one is, by construction.
DETS = [
    (1, (10, 10, 30, 30), 0.9),  # d0 TP on gt0
    (1, (10, 10, 30, 30), 0.8),  # d1 duplicate of gt0
    (1, (60, 60, 30, 30), 0.7),  # d2 classification: on gt1, wrong class
    (1, (25, 10, 30, 30), 0.65),  # d3 localization: IoU 1/3 with gt0
    (1, (0, 70, 10, 10), 0.62),  # d4 background: touches nothing
    (2, (25, 10, 30, 30), 0.6),  # d5 both: other class, IoU 1/3
]
EXPECTED = ['', 'duplicate', 'classification', 'localization', 'background',
            'both']


def write_case(tmp_path, gt=GT, dets=DETS, name='case'):
    data = dict(
        images=[dict(id=1, file_name='1.jpg', width=100, height=100)],
        annotations=[dict(id=n + 1, image_id=1, category_id=c, bbox=list(b),
                          area=b[2] * b[3], iscrowd=0)
                     for n, (c, *b) in enumerate(gt)],
        categories=[dict(id=1, name='A'), dict(id=2, name='B')])
    gt_path = tmp_path / f'{name}_gt.json'
    gt_path.write_text(json.dumps(data))
    res = [dict(image_id=1, category_id=c, bbox=list(b), score=s)
           for c, b, s in dets]
    res_path = tmp_path / f'{name}_res.json'
    res_path.write_text(json.dumps(res))
    return str(gt_path), str(res_path)


def coco_map50(gt_path, dets):
    """mAP50 from plain pycocotools (the independent reference)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        if not dets:
            return 0.0
        dt = gt.loadRes([dict(image_id=1, category_id=c, bbox=list(b),
                              score=s) for c, b, s in dets])
        ev = COCOeval(gt, dt, 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[1]


def test_known_error_types_and_counts(tmp_path):
    gt_path, res_path = write_case(tmp_path)
    table = load_coco(gt_path)
    result = error_breakdown(table, load_detections(res_path, table))
    assert list(result.det_error) == EXPECTED
    rows = {r['class']: r for r in result.rows()}
    a, b = rows['A'], rows['B']
    assert (a['n_duplicate'], a['n_localization'], a['n_background'],
            a['n_missed']) == (1, 1, 1, 1)
    # the classification error counts for B: B's AP is what it costs
    assert (b['n_classification'], b['n_both']) == (1, 1)
    assert a['n_classification'] == b['n_missed'] == 0  # gt1 was aimed at
    # closed form: B has one GT and only a FP; relabelled d2 (0.7) ranks
    # above d5 (0.6) and matches it, so B's AP50 goes 0 -> 1
    assert b['ap50'] == 0.0
    assert b['dap_classification'] == pytest.approx(1.0)


# 'coco' re-evaluates each fix with COCOeval; TIDE's AP equals it here
# (both classes have GT, no score ties, one error per aimed-at GT)
@pytest.mark.parametrize('dap_mode', ['coco', 'tide'])
def test_dap_equals_pycocotools_on_hand_fixed_input(tmp_path, dap_mode):
    gt_path, res_path = write_case(tmp_path)
    table = load_coco(gt_path)
    total = error_breakdown(table, load_detections(res_path, table),
                            dap_mode).rows()[-1]
    base = coco_map50(gt_path, DETS)
    assert total['ap50'] == pytest.approx(base, abs=1e-12)
    d = list(DETS)
    fixed = {
        'classification': d[:2] + [(2, d[2][1], d[2][2])] + d[3:],
        'localization': d[:3] + d[4:],  # gt0 already found: suppressed
        'both': d[:5],
        'duplicate': d[:1] + d[2:],
        'background': d[:4] + d[5:],
    }
    for kind, dets in fixed.items():
        want = coco_map50(gt_path, dets) - base
        assert total[f'dap_{kind}'] == pytest.approx(want, abs=1e-12), kind
    no_missed, _ = write_case(tmp_path, gt=GT[:2], name='nomiss')
    assert total['dap_missed'] == pytest.approx(
        coco_map50(no_missed, DETS) - base, abs=1e-12)


def test_perfect_detections_have_no_errors(tmp_path):
    dets = [(c, tuple(b), 0.9) for c, *b in GT]
    gt_path, res_path = write_case(tmp_path, dets=dets, name='perfect')
    table = load_coco(gt_path)
    result = error_breakdown(table, load_detections(res_path, table))
    assert result.map50 == pytest.approx(1.0)
    for t in ERROR_TYPES:
        assert result.counts[t].sum() == 0 and result.dmap[t] == 0


def test_cli_on_a_real_mmdet_pickle(demo_eval_run, tmp_path, capsys):
    run = demo_eval_run
    out = tmp_path / 'eb'
    assert load_tool('error_breakdown').main([
        run['predictions'], '--config', run['config'], '--data-root',
        run['data_root'], '--out-dir', str(out)]) == 0
    assert 'AP50 gained if fixed' in capsys.readouterr().out
    rows = json.loads((out / 'error_breakdown.json').read_text())['rows']
    metrics = json.loads(open(run['metrics']).read())
    assert round(rows[-1]['ap50'], 3) == pytest.approx(
        metrics['coco/bbox_mAP_50'])
    # every detection is a TP or exactly one error type
    sweep = load_tool('threshold_sweep')
    assert sweep.main([run['predictions'], '--config', run['config'],
                       '--data-root', run['data_root'], '--out-dir',
                       str(tmp_path / 'sw'), '--no-plots']) == 0
    report = json.loads((tmp_path / 'sw' / 'sweep.json').read_text())
    fp = [r for r in report['sweep']
          if r['class'] == 'all' and r['threshold'] == 0.0][0]['fp']
    assert sum(rows[-1][f'n_{t}'] for t in ERROR_TYPES
               if t != 'missed') == fp
    assert np.isfinite(rows[-1]['dap_background'])
    assert (out / 'error_breakdown.png').stat().st_size > 0
