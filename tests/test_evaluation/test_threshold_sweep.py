"""Threshold sweep: COCOeval's AP, exact counts, monotone recall, bad input."""
import contextlib
import io
import json
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from analysis_fixtures import load_tool
from mmext.evaluation.predictions import load_detections
from mmext.evaluation.threshold_sweep import images_lost, sweep_thresholds
from mmext.data import load_coco
from mmext.utils import run_cli

CLASSES = ['a', 'b']


def coco_gt(images, anns, path):
    """Write a COCO json: images [(id, w, h)], anns [(img, cat, x, y, w, h, crowd)]."""
    data = dict(
        images=[dict(id=i, file_name=f'{i}.jpg', width=w, height=h)
                for i, w, h in images],
        annotations=[
            dict(id=n + 1, image_id=i, category_id=c, bbox=[x, y, w, h],
                 area=w * h, iscrowd=crowd)
            for n, (i, c, x, y, w, h, crowd) in enumerate(anns)
        ],
        categories=[dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)])
    path.write_text(json.dumps(data))
    return str(path)


def coco_results(dets, path):
    """Write COCO results: dets [(img, cat, x, y, w, h, score)]."""
    path.write_text(json.dumps([
        dict(image_id=i, category_id=c, bbox=[x, y, w, h], score=s)
        for i, c, x, y, w, h, s in dets
    ]))
    return str(path)


def pycoco(gt_path, dets, max_dets=100):
    """Plain pycocotools COCOeval on the same input (the reference)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes([
            dict(image_id=i, category_id=c, bbox=[x, y, w, h], score=s)
            for i, c, x, y, w, h, s in dets
        ])
        ev = COCOeval(gt, dt, 'bbox')
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def random_case(rng, num_images=6, max_gt=4, max_det=6):
    images = [(i + 1, 100, 80) for i in range(num_images)]
    anns, dets = [], []
    for i, _, _ in images:
        for _ in range(rng.integers(0, max_gt + 1)):
            x, y = rng.uniform(0, 60), rng.uniform(0, 40)
            w, h = rng.uniform(5, 40), rng.uniform(5, 40)
            anns.append((i, int(rng.integers(1, 3)), x, y, w, h,
                         int(rng.random() < 0.15)))
        for _ in range(rng.integers(0, max_det + 1)):
            x, y = rng.uniform(0, 60), rng.uniform(0, 40)
            w, h = rng.uniform(5, 40), rng.uniform(5, 40)
            dets.append((i, int(rng.integers(1, 3)), x, y, w, h,
                         float(np.round(rng.random(), 2))))
    # near-copies of GT boxes make true positives likely
    for (i, c, x, y, w, h, _) in anns:
        if rng.random() < 0.7:
            dets.append((i, c, x + rng.normal(0, 2), y + rng.normal(0, 2), w,
                         h, float(np.round(rng.random(), 2))))
    return images, anns, dets


def run_sweep(tmp_path, images, anns, dets, thresholds=None, name='case'):
    gt_path = coco_gt(images, anns, tmp_path / f'{name}_gt.json')
    res_path = coco_results(dets, tmp_path / f'{name}_res.json')
    table = load_coco(gt_path)
    result = sweep_thresholds(table, load_detections(res_path, table),
                              thresholds)
    return gt_path, table, result


def test_ap_equals_pycocotools_with_crowd(tmp_path):
    rng = np.random.default_rng(3)
    images, anns, dets = random_case(rng, num_images=25, max_gt=5, max_det=8)
    gt_path, _, result = run_sweep(tmp_path, images, anns, dets)
    ref = pycoco(gt_path, dets)
    assert result.map == pytest.approx(ref.stats[0], abs=1e-12)
    assert result.map50 == pytest.approx(ref.stats[1], abs=1e-12)
    # per class: COCOeval's precision array, as mmdet's classwise AP
    for k, name in enumerate(CLASSES):
        prec = ref.eval['precision'][:, :, k, 0, -1]
        assert result.curve(name).ap == pytest.approx(
            prec[prec > -1].mean(), abs=1e-12)


def filtered_counts(gt_path, dets, t):
    """TP, and images with a TP, from COCOeval on the detections >= t only."""
    kept = [d for d in dets if d[6] >= t]
    if not kept:
        return 0, set()
    ev = pycoco(gt_path, kept, max_dets=1000)
    tp, hit = 0, set()
    for e in ev.evalImgs:
        # area range 'all' only, IoU 0.5
        if e is None or e['aRng'] != [0, 1e10]:
            continue
        ok = (e['dtMatches'][0] > 0) & ~e['dtIgnore'][0].astype(bool)
        tp += int(ok.sum())
        if ok.any():
            hit.add(e['image_id'])
    return tp, hit


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_sweep_properties_and_exact_counts(tmp_path, seed):
    rng = np.random.default_rng(seed)
    images, anns, dets = random_case(rng)
    thresholds = [0.0, 0.3, 0.5, 0.8]
    gt_path, table, result = run_sweep(tmp_path, images, anns, dets,
                                       thresholds, name=f's{seed}')
    overall = result.curve('all')
    num_gt = int((~table.ignore).sum())
    assert overall.num_gt == num_gt
    assert np.all(overall.tp + overall.fn == num_gt)
    if num_gt:
        assert np.all(overall.recall <= 1.0)
        assert np.all(np.diff(overall.recall) <= 0)  # non-increasing
        assert np.all(np.diff(overall.detection_rate) <= 0)
    assert np.all(np.diff(overall.tp) <= 0) and np.all(np.diff(overall.fp) <= 0)
    images_with_gt = {int(i) for i in table.image_id[~table.ignore]}
    for n, t in enumerate(thresholds):
        tp, hit = filtered_counts(gt_path, dets, t)
        assert overall.tp[n] == tp
        if images_with_gt:
            assert overall.detection_rate[n] == pytest.approx(
                len(hit & images_with_gt) / len(images_with_gt))
    assert sum(result.curve(c).tp[0] for c in CLASSES) == overall.tp[0]


def test_precision_is_not_monotone(tmp_path):
    # top detection is a false positive, the next a true positive:
    # precision rises from 0 (t=0.9) to 0.5 (t=0.5) as the threshold drops.
    images = [(1, 100, 100)]
    anns = [(1, 1, 10, 10, 20, 20, 0)]
    dets = [(1, 1, 60, 60, 20, 20, 0.95), (1, 1, 10, 10, 20, 20, 0.6)]
    _, _, result = run_sweep(tmp_path, images, anns, dets, [0.5, 0.9])
    c = result.curve('a')
    assert c.precision.tolist() == [0.5, 0.0]
    assert c.recall.tolist() == [1.0, 0.0]
    assert c.best_f1(result.thresholds) == (0.5, pytest.approx(2 / 3))


def test_images_lost_between_thresholds(tmp_path):
    images = [(1, 100, 100), (2, 100, 100), (3, 100, 100)]
    anns = [(1, 1, 10, 10, 60, 10, 0), (2, 1, 10, 10, 20, 20, 0),
            (3, 2, 0, 0, 50, 50, 0)]
    dets = [(1, 1, 10, 10, 60, 10, 0.57), (2, 1, 10, 10, 20, 20, 0.9),
            (3, 2, 0, 0, 50, 50, 0.1), (3, 2, 60, 60, 10, 10, 0.4)]
    _, table, result = run_sweep(tmp_path, images, anns, dets)
    lost = images_lost(result, table, 0.25, 0.6)
    assert [r['image_id'] for r in lost] == [1]
    assert lost[0]['best_score'] == pytest.approx(0.57)
    assert (lost[0]['box_w'], lost[0]['box_h']) == (60, 10)
    assert lost[0]['box_area_pct'] == pytest.approx(6.0)


def test_cli_counts_and_skips_bad_predictions(tmp_path, capsys):
    images = [(1, 100, 100), (2, 100, 100)]
    anns = [(1, 1, 10, 10, 20, 20, 0), (2, 2, 10, 10, 20, 20, 0)]
    good = [(1, 1, 10, 10, 20, 20, 0.8)]
    bad = [(99, 1, 10, 10, 20, 20, 0.5),          # unknown image
           (1, 7, 10, 10, 20, 20, 0.5),           # unknown category
           (1, 1, 10, 10, 20, 20, float('nan')),  # NaN score
           (1, 1, 10, 10, 20, 20, 1.5),           # out of range
           (2, 2, 10, 10, 0, 20, 0.5)]            # degenerate box
    gt_path = coco_gt(images, anns, tmp_path / 'gt.json')
    res = coco_results(good + bad, tmp_path / 'res.json')
    raw = json.loads(open(res).read())
    raw.append(dict(image_id=1, category_id=1, bbox=[1, 1, 5, 5],
                    score='high'))  # not a number
    open(res, 'w').write(json.dumps(raw))
    tool = load_tool('threshold_sweep')
    out_dir = tmp_path / 'out'
    assert tool.main([res, '--gt', gt_path, '--out-dir', str(out_dir),
                      '--no-plots']) == 0
    text = capsys.readouterr().out
    report = json.loads((out_dir / 'sweep.json').read_text())
    assert report['skipped_detections'] == {
        'unknown image id': 1, 'unknown category': 1,
        'NaN or infinite score': 2, 'score outside [0, 1]': 1,
        'degenerate box (width or height <= 0)': 1}
    assert 'skipped 1 detections: unknown image id' in text
    row = [r for r in report['sweep']
           if r['class'] == 'all' and r['threshold'] == 0.0][0]
    assert (row['tp'], row['fp'], row['fn']) == (1, 0, 1)
    # empty predictions: zero TP, COCO AP 0, no traceback
    empty = coco_results([], tmp_path / 'empty.json')
    assert tool.main([empty, '--gt', gt_path]) == 0
    assert 'AP 0.0000' in capsys.readouterr().out


def test_cli_bad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'not a pickle')
    gt = coco_gt([(1, 10, 10)], [], tmp_path / 'gt.json')
    with pytest.raises(SystemExit) as exc:
        run_cli(load_tool('threshold_sweep').main, [str(bad), '--gt', gt])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().count('\n') == 0 and str(bad) in err


def test_malformed_mmdet_pickle_is_one_line(tmp_path, capsys):
    gt = coco_gt([(1, 10, 10)], [], tmp_path / 'gt.json')
    bad = tmp_path / 'nolabels.pkl'
    with open(bad, 'wb') as f:
        pickle.dump([dict(img_id=1, pred_instances=dict(
            bboxes=torch.zeros(1, 4), scores=torch.ones(1)))], f)
    with pytest.raises(SystemExit) as exc:
        run_cli(load_tool('threshold_sweep').main, [str(bad), '--gt', gt])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'labels' in err and err.strip().count('\n') == 0


def test_mmdet_pickle_from_a_real_run(demo_eval_run, tmp_path):
    run = demo_eval_run
    tool = load_tool('threshold_sweep')
    out_dir = tmp_path / 'sweep'
    assert tool.main([run['predictions'], '--config', run['config'],
                      '--data-root', run['data_root'], '--compare', '0.25',
                      '0.6', '--out-dir', str(out_dir)]) == 0
    report = json.loads((out_dir / 'sweep.json').read_text())
    metrics = json.loads(open(run['metrics']).read())
    # same predictions, same COCOeval: mmdet's rounded mAP
    assert round(report['map'], 3) == pytest.approx(metrics['coco/bbox_mAP'])
    assert round(report['map50'], 3) == pytest.approx(
        metrics['coco/bbox_mAP_50'])
    with open(run['predictions'], 'rb') as f:
        dumped = pickle.load(f)
    num_dets = sum(len(r['pred_instances']['scores']) for r in dumped)
    row = [r for r in report['sweep']
           if r['class'] == 'all' and r['threshold'] == 0.0][0]
    assert row['tp'] + row['fp'] == num_dets
    assert (out_dir / 'pr_curves.png').stat().st_size > 0
    assert (out_dir / 'f1_vs_threshold.png').stat().st_size > 0
    assert isinstance(dumped[0]['pred_instances']['bboxes'], torch.Tensor)
