"""Error breakdown against TIDE itself (the tidecv package) on planted errors.

A seeded synthetic box-only set plants every error type (and the cases
where TIDE's fixes are subtle: a classification and a localization error on
one GT, errors on a GT a true positive already found, a class with false
positives only, images without GT). tidecv evaluates the same boxes through
its ``Data`` API in box mode; counts and dAP per type must be TIDE's.
"""
import json

import numpy as np
import pytest

tidecv = pytest.importorskip('tidecv')  # requirements/tests.txt installs it

from analysis_fixtures import load_tool  # noqa: E402
from mmext.evaluation.error_breakdown import (ERROR_TYPES,  # noqa: E402
                                            error_breakdown, tide_ap)
from mmext.evaluation.predictions import load_detections  # noqa: E402
from mmext.data import load_coco  # noqa: E402

# 'D' has no GT: only background detections carry it (TIDE keeps it in mAP)
CLASSES = ('A', 'B', 'C', 'D')
SIZE = 300
TIDE_NAME = dict(classification='Cls', localization='Loc', both='Both',
                 duplicate='Dupe', background='Bkg', missed='Miss')


def _jitter(rng, box, s):
    """A box near ``box`` (IoU well above 0.5 for small ``s``)."""
    x, y, w, h = box
    return [x + rng.normal(0, s * w), y + rng.normal(0, s * h),
            w * (1 + rng.normal(0, s)), h * (1 + rng.normal(0, s))]


def _shifted(rng, box):
    """``box`` slid sideways by 45-75% of its width: IoU about 0.15-0.4."""
    x, y, w, h = box
    frac = rng.uniform(0.45, 0.75) * rng.choice([-1, 1])
    return [x + frac * w, y + rng.uniform(-0.1, 0.1) * h, w, h]


def _plant_gt(rng, img, c, box, dets):
    """Detections planted on one GT of class ``c``, each type by chance."""
    other = c % 3 + 1
    found = rng.random() < 0.55
    planted = [
        (found, c, _jitter(rng, box, 0.03)),          # true positive
        (rng.random() < 0.25, c, _jitter(rng, box, 0.05)),  # duplicate
        (rng.random() < 0.3, other, _jitter(rng, box, 0.04)),  # class
        (rng.random() < 0.3, c, _shifted(rng, box)),      # localization
        (rng.random() < 0.15, other, _shifted(rng, box)),  # both
    ]
    if not found and rng.random() < 0.4:
        # two errors aimed at one free GT: TIDE fixes one, drops the other
        planted += [(True, other, _jitter(rng, box, 0.04)),
                    (True, c, _shifted(rng, box))]
    for keep, cat, b in planted:
        if keep:
            dets.append((img, cat, b, float(rng.uniform(0, 1))))


def _plant_image(rng, img, gts, dets):
    """Up to 4 GT boxes of classes 1-3, and small background boxes."""
    for _ in range(int(rng.integers(0, 5))):
        w, h = rng.uniform(20, 60, size=2)
        box = [rng.uniform(0, SIZE - w), rng.uniform(0, SIZE - h), w, h]
        c = int(rng.integers(1, 4))
        gts.append((img, c, box))
        _plant_gt(rng, img, c, box, dets)
    for _ in range(int(rng.integers(0, 3))):  # small boxes: background
        w, h = rng.uniform(5, 20, size=2)
        dets.append((img, int(rng.integers(1, 5)),
                     [rng.uniform(0, SIZE - w), rng.uniform(0, SIZE - h),
                      w, h], float(rng.uniform(0, 0.8))))


def planted_case(seed, num_images=40):
    """GT ``[(img, cat, xywh)]`` and detections ``[(img, cat, xywh, score)]``.

    Scores are continuous, so no two detections tie (TIDE and COCOeval
    break score ties in different orders).
    """
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for img in range(1, num_images + 1):
        _plant_image(rng, img, gts, dets)
    return gts, dets


def write_coco(tmp_path, gts, dets, num_images):
    """The case as a COCO json and a COCO results json (what users have)."""
    data = dict(
        images=[dict(id=i, file_name=f'{i}.jpg', width=SIZE, height=SIZE)
                for i in range(1, num_images + 1)],
        annotations=[dict(id=n + 1, image_id=i, category_id=c, bbox=b,
                          area=b[2] * b[3], iscrowd=0)
                     for n, (i, c, b) in enumerate(gts)],
        categories=[dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)])
    gt_path, res_path = tmp_path / 'gt.json', tmp_path / 'res.json'
    gt_path.write_text(json.dumps(data))
    res_path.write_text(json.dumps([
        dict(image_id=i, category_id=c, bbox=b, score=s)
        for i, c, b, s in dets]))
    return str(gt_path), str(res_path)


def run_tide(gts, dets, num_images):
    """tidecv in box mode through its Data API: (run, {short name: dAP})."""
    gt, pred = tidecv.Data('gt'), tidecv.Data('pred')
    for i in range(1, num_images + 1):
        # registered so that images without GT are evaluated too
        gt.add_image(i, f'{i}.jpg')
    for i, c, b in gts:
        gt.add_ground_truth(i, c, box=b)
    for i, c, b, s in dets:
        pred.add_detection(i, c, s, box=b)
    tide = tidecv.TIDE()
    run = tide.evaluate(gt, pred, mode=tidecv.TIDE.BOX)
    return run, tide.get_main_errors()['pred']


def _shared_gt_fixes(run):
    """Classification/localization errors TIDE suppresses on a free GT."""
    kinds = (tidecv.ClassError, tidecv.BoxError)
    return sum(1 for e in run.errors if isinstance(e, kinds)
               and e.match is not None and e.fixed[1] is None)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_counts_and_dap_equal_tide(tmp_path, seed):
    num_images = 40
    gts, dets = planted_case(seed, num_images)
    gt_path, res_path = write_coco(tmp_path, gts, dets, num_images)
    table = load_coco(gt_path)
    result = error_breakdown(table, load_detections(res_path, table))
    run, tide_dap = run_tide(gts, dets, num_images)
    # the case exercises what TIDE and a naive re-evaluation disagree on
    assert _shared_gt_fixes(run) > 0
    assert len(run.error_dict[tidecv.BackgroundError]) > 0
    total = result.rows()[-1]
    for kind in ERROR_TYPES:
        errors = [v for e, v in run.error_dict.items()
                  if e.short_name == TIDE_NAME[kind]][0]
        assert total[f'n_{kind}'] == len(errors) > 0, kind
        # TIDE reports AP in percent; the arithmetic is the same up to
        # that scaling, so only float rounding (~1e-16) may differ
        assert total[f'dap_{kind}'] == pytest.approx(
            tide_dap[TIDE_NAME[kind]] / 100, abs=1e-12), kind
    assert result.ref_map50 == pytest.approx(run.ap / 100, abs=1e-12)


def test_coco_mode_weighs_by_cocoeval(tmp_path):
    """'coco' mode: same counts; a no-GT class is not in the mean, so
    suppressing its false positives gains less than in TIDE's mAP."""
    gts, dets = planted_case(0)
    gt_path, res_path = write_coco(tmp_path, gts, dets, 40)
    table = load_coco(gt_path)
    d = load_detections(res_path, table)
    tide, coco = error_breakdown(table, d), error_breakdown(table, d, 'coco')
    for kind in ERROR_TYPES:
        assert (tide.counts[kind] == coco.counts[kind]).all()
    assert coco.ref_map50 == coco.map50 > tide.ref_map50
    assert coco.dmap['background'] < tide.dmap['background']
    with pytest.raises(ValueError, match='dap_mode'):
        error_breakdown(table, d, 'voc')


def test_tide_ap_equals_tidecv_ap_object():
    """One class's AP against tidecv's APDataObject, recall 0.07 included."""
    from tidecv.ap import APDataObject
    rng = np.random.default_rng(5)
    for num_gt, n in [(100, 30), (7, 12), (3, 0), (50, 200)]:
        score = rng.permutation(n) / max(n, 1)
        tp = rng.random(n) < 0.4
        ref = APDataObject()
        ref.add_gt_positives(num_gt)
        for i in range(n):
            ref.push(i, score[i], bool(tp[i]))
        assert tide_ap(score, tp, num_gt) == pytest.approx(
            ref.get_ap() / 100, abs=1e-12)


def test_cli_dap_mode_flag(tmp_path, capsys):
    gts, dets = planted_case(1)
    gt_path, res_path = write_coco(tmp_path, gts, dets, 40)
    tool = load_tool('error_breakdown')
    out = {}
    for mode in ('tide', 'coco'):
        assert tool.main([res_path, '--gt', gt_path, '--dap-mode', mode,
                          '--out-dir', str(tmp_path / mode)]) == 0
        assert f'dAP, {mode}' in capsys.readouterr().out
        out[mode] = json.loads(
            (tmp_path / mode / 'error_breakdown.json').read_text())
    assert out['tide']['dap_mode'] == 'tide'
    _, tide_dap = run_tide(gts, dets, 40)
    assert out['tide']['rows'][-1]['dap_classification'] == pytest.approx(
        tide_dap['Cls'] / 100, abs=1e-12)
    assert out['tide']['rows'] != out['coco']['rows']
