"""Teacher competence and calibrated thresholds against pycocotools + numpy.

The reference: pycocotools' COCOeval matches every detection (IoU 0.5, all
detections kept), numpy counts the matched and unmatched ones above each
threshold, and scipy's Wilson interval (two-sided 80% = one-sided 90%) gives
the precision bound. mmext computes the same through the threshold sweep,
its own Wilson formula and the ``calibrated`` policy.
"""
import numpy as np
import pytest
from scipy.stats import binomtest

from mmext.evaluation.predictions import load_detections
from mmext.evaluation.teacher_competence import (competence_from_predictions,
                                               competence_grid)
from mmext.data import load_coco
from mmext.models.threshold_policies import StageThreshold
from mmext.runs.teacher_competence import (calibrated_threshold,
                                           class_competence,
                                           wilson_lower_bound)
from test_threshold_sweep import (CLASSES, coco_gt, coco_results, pycoco,
                                  random_case)


def reference_counts(ev, thresholds):
    """Per category id: TP and FP with score >= t, from COCOeval's matches."""
    out = {}
    area_all = ev.params.areaRng[0]
    for cat in ev.params.catIds:
        scores, tps = [], []
        for e in ev.evalImgs:
            if e is None or e['category_id'] != cat or \
                    e['aRng'] != area_all:
                continue
            for k, s in enumerate(e['dtScores']):
                if e['dtIgnore'][0][k]:
                    continue
                scores.append(s)
                tps.append(e['dtMatches'][0][k] > 0)
        scores, tps = np.asarray(scores), np.asarray(tps, bool)
        out[cat] = (np.array([(tps & (scores >= t)).sum()
                              for t in thresholds]),
                    np.array([(~tps & (scores >= t)).sum()
                              for t in thresholds]))
    return out


def reference_threshold(thresholds, tp, fp, target, confidence):
    for t, k, f in zip(thresholds, tp, fp):
        if k + f and binomtest(int(k), int(k + f)).proportion_ci(
                2 * confidence - 1, 'wilson').low >= target - 1e-12:
            return float(t)
    return None


@pytest.mark.parametrize('seed', range(6))
def test_competence_and_calibration_match_pycocotools(tmp_path, seed):
    rng = np.random.default_rng(seed)
    images, anns, dets = random_case(rng, num_images=12, max_gt=5,
                                     max_det=8)
    gt_path = coco_gt(images, anns, tmp_path / 'gt.json')
    ev = pycoco(gt_path, dets, max_dets=1000)
    ev.params.iouThrs = np.array([0.5])
    ev.evaluate()
    gt = load_coco(gt_path)
    record = competence_from_predictions(
        gt, load_detections(coco_results(dets, tmp_path / 'r.json'), gt,
                            gt_json=gt_path), iteration=7)
    thr = competence_grid()
    assert record['thresholds'] == [round(float(t), 6) for t in thr]
    ref = reference_counts(ev, thr)
    for k, name in enumerate(CLASSES):
        tp, fp = ref[k + 1]
        assert record['tp'][name] == tp.tolist()
        assert record['fp'][name] == fp.tolist()
    stage = StageThreshold('cls', dict(type='calibrated', warmup_thr=0.7,
                                       precision_target=0.5,
                                       confidence=0.9, floor=0.0,
                                       ceiling=1.0), len(CLASSES))
    assert stage.calibrate(record, iteration=7)
    for k, name in enumerate(CLASSES):
        tp, fp = ref[k + 1]
        expected = reference_threshold(thr, tp, fp, 0.5, 0.9)
        assert stage.values[k] == pytest.approx(
            0.7 if expected is None else expected)
        assert bool(stage.adapted[k]) == (expected is not None)


def test_wilson_matches_scipy():
    for k, n in [(0, 1), (1, 1), (3, 3), (36, 100), (7, 9), (250, 260)]:
        for conf in (0.8, 0.9, 0.95):
            ref = binomtest(k, n).proportion_ci(2 * conf - 1, 'wilson').low
            assert wilson_lower_bound(k, n, conf) == pytest.approx(ref)
    assert wilson_lower_bound(0, 0) == 0.0


def _record(tp, fp, num_gt=50, thresholds=(0.1, 0.2, 0.3, 0.5)):
    return {'iter': 100, 'model': 'teacher', 'iou_thr': 0.5,
            'num_images': 10, 'classes': list(tp),
            'thresholds': list(thresholds),
            'num_gt': {n: num_gt for n in tp}, 'tp': tp, 'fp': fp}


def test_class_at_precision_036_is_never_lowered():
    # 'chipped' keeps precision 0.36 at every threshold; 'lucky' has its one
    # box right at 0.5 only; 'rust' reaches 0.61 on 44 boxes at 0.2.
    record = _record(
        tp={'chipped': [36, 18, 9, 4], 'lucky': [1, 1, 1, 1],
            'rust': [30, 27, 4, 0]},
        fp={'chipped': [64, 32, 16, 7], 'lucky': [20, 10, 1, 0],
            'rust': [70, 17, 5, 0]})
    stage = StageThreshold('cls', dict(type='calibrated', warmup_thr=0.5,
                                       floor=0.05), 3)
    stage.calibrate(record, 100)
    assert stage.values.tolist() == [0.5, 0.5, 0.2]
    assert stage.adapted.tolist() == [False, False, True]
    rows = {r['class']: r for r in class_competence(record)}
    assert not rows['chipped']['competent']
    assert rows['chipped']['best_precision'] == pytest.approx(0.36, abs=0.01)
    assert not rows['lucky']['competent']  # 1 of 1 is not evidence
    assert rows['rust']['thr_at_target'] == 0.2
    assert rows['rust']['recall_at_target'] == pytest.approx(27 / 50)


def test_not_reached_ceiling_and_warmup():
    record = _record(tp={'a': [1, 1, 1, 1]}, fp={'a': [9, 9, 9, 9]})
    stage = StageThreshold('cls', dict(type='calibrated', warmup_thr=0.4,
                                       not_reached='ceiling',
                                       warmup_iters=200), 1)
    assert not stage.calibrate(record, 100)  # before warmup_iters
    assert stage.values.tolist() == [0.4]
    assert stage.calibrate(record, 200)
    assert stage.values.tolist() == [0.95]
    # a window update never moves a calibrated threshold
    assert stage.compute([np.ones(50)], 10, 300).tolist() == [0.95]


@pytest.mark.parametrize('spec, match', [
    (dict(precision_target=0), 'precision_target'),
    (dict(confidence=1.0), 'confidence'),
    (dict(not_reached='lower'), 'not_reached'),
    (dict(window=3), 'no argument window')])
def test_bad_calibrated_specs(spec, match):
    from mmext.utils import MMExtError
    with pytest.raises(MMExtError, match=match):
        StageThreshold('cls', dict(type='calibrated', **spec), 2)


def test_calibrated_threshold_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        thr = np.round(np.sort(rng.random(8)), 2)
        tp = np.sort(rng.integers(0, 30, 8))[::-1]
        fp = np.sort(rng.integers(0, 30, 8))[::-1]
        got = calibrated_threshold(thr, tp, fp, 0.6, 0.9)
        assert got == reference_threshold(thr, tp, fp, 0.6, 0.9)
