"""The prediction reader's rules, one place for every tool: a repeated image
is an error, predictions of another dataset are an error naming both files,
a detection with a NaN score is a counted skip."""
import json
import pickle

import numpy as np
import pytest

from mmext.checks.dataset_check_report import _add_prediction_rows
from mmext.data import load_coco
from mmext.evaluation.predictions import load_detections
from mmext.evaluation.threshold_sweep import sweep_thresholds
from mmext.utils import MMExtError
from test_threshold_sweep import coco_gt, random_case


def _pickle(results, path):
    with open(path, 'wb') as f:
        pickle.dump(results, f)
    return str(path)


def _results(dets, images, prefix='/data/val'):
    by_img = {i: [] for i, _, _ in images}
    for i, c, x, y, w, h, s in dets:
        by_img[i].append((c - 1, [x, y, x + w, y + h], s))
    out = []
    for i, rows in by_img.items():
        out.append(dict(img_id=i, img_path=f'{prefix}/{i}.jpg',
                        pred_instances=dict(
                            labels=np.array([r[0] for r in rows], np.int64),
                            bboxes=np.array([r[1] for r in rows],
                                            np.float64).reshape(-1, 4),
                            scores=np.array([r[2] for r in rows]))))
    return out


@pytest.fixture
def case(tmp_path):
    rng = np.random.default_rng(5)
    images, anns, dets = random_case(rng, num_images=10)
    gt_path = coco_gt(images, anns, tmp_path / 'gt.json')
    return images, dets, load_coco(gt_path), gt_path


def test_repeated_image_is_an_error_not_a_double_count(case, tmp_path):
    images, dets, gt, _ = case
    results = _results(dets, images)
    path = _pickle(results + results[3:4], tmp_path / 'twice.pkl')
    with pytest.raises(MMExtError) as err:
        load_detections(path, gt)
    text = str(err.value)
    assert 'twice.pkl' in text and 'repeat an image' in text
    assert '\n' not in text
    once = _pickle(results, tmp_path / 'once.pkl')
    assert len(load_detections(once, gt)) == len(dets)


def test_predictions_of_another_dataset_are_refused(case, tmp_path):
    images, dets, gt, gt_path = case
    # same integer ids, other files: ids overlap by chance
    foreign = _results(dets, images)
    for res in foreign:
        res['img_path'] = f'/elsewhere/img_{res["img_id"]}.png'
    with pytest.raises(MMExtError) as err:
        load_detections(_pickle(foreign, tmp_path / 'o.pkl'), gt)
    text = str(err.value)
    assert 'o.pkl' in text and 'gt.json' in text
    assert 'another dataset' in text and '\n' not in text


def test_few_foreign_detections_are_counted_and_the_rest_equals_clean(
        case, tmp_path):
    images, dets, gt, _ = case
    results = _results(dets, images)
    clean = load_detections(_pickle(results, tmp_path / 'c.pkl'), gt)
    # one extra image of another dataset and a NaN score
    extra = dict(img_id=999, img_path='/x/999.jpg', pred_instances=dict(
        labels=np.array([0]), bboxes=np.array([[1.0, 1, 9, 9]]),
        scores=np.array([0.9])))
    results[0]['pred_instances']['scores'] = np.append(
        results[0]['pred_instances']['scores'], np.nan)
    results[0]['pred_instances']['labels'] = np.append(
        results[0]['pred_instances']['labels'], 0)
    results[0]['pred_instances']['bboxes'] = np.vstack(
        [results[0]['pred_instances']['bboxes'], [[1.0, 1, 9, 9]]])
    dirty = load_detections(_pickle(results + [extra], tmp_path / 'd.pkl'),
                            gt)
    assert dirty.skip_counts() == {'image file not in the ground truth': 1,
                                   'NaN or infinite score': 1}
    a, b = sweep_thresholds(gt, clean), sweep_thresholds(gt, dirty)
    assert a.map == b.map
    for ca, cb in zip(a.curves, b.curves):
        assert ca.tp.tolist() == cb.tp.tolist()
        assert ca.fp.tolist() == cb.fp.tolist()


def test_check_dataset_counts_skipped_detections(case, tmp_path):
    from mmext.checks.dataset_check_report import DatasetCheckReport
    images, dets, gt, _ = case
    results = _results(dets, images)
    results[1]['pred_instances']['scores'] = np.full(
        len(results[1]['pred_instances']['scores']), np.nan)
    path = _pickle(results, tmp_path / 'nan.pkl')
    loaded = load_detections(path, gt)
    report = DatasetCheckReport([], {})
    _add_prediction_rows(report, loaded, gt, path, 0.3, str(tmp_path))
    row = next(r for r in report.results if r.name == 'usable detections')
    n_nan = len(results[1]['pred_instances']['scores'])
    if n_nan:
        assert row.status == 'warn'
        assert f'{n_nan} skipped: NaN or infinite score' in row.examples
    else:
        assert row.status == 'pass'


def test_pairing_agreement_against_a_brute_force():
    """Own and shuffled best-box IoUs equal an independent computation
    (mmdet's bbox_overlaps) on random boxes; perfect detections are never
    refused, detections of other images are."""
    from mmdet.evaluation.functional import bbox_overlaps

    from mmext.evaluation.prediction_agreement import (
        SHIFTS, fits_no_better_than_chance, pairing_agreement)
    rng = np.random.default_rng(0)
    n = 12
    gt_image = np.repeat(np.arange(1, n + 1), 2)
    xy = rng.uniform(0, 150, (2 * n, 2))
    gt = np.hstack([xy, xy + rng.uniform(10, 50, (2 * n, 2))])
    det_image = np.repeat(np.arange(1, n + 1), 3)
    dxy = rng.uniform(0, 150, (3 * n, 2))
    det = np.hstack([dxy, dxy + rng.uniform(10, 50, (3 * n, 2))])
    score = rng.uniform(0, 1, 3 * n)
    own, shuffled = pairing_agreement(det_image, score, det, gt_image, gt)
    ids = list(range(1, n + 1))
    for k, i in enumerate(ids):
        mine = np.flatnonzero(det_image == i)
        best = det[mine[np.argmax(score[mine])]][None]
        assert own[k] == pytest.approx(
            bbox_overlaps(best, gt[gt_image == i]).max())
        want = np.mean([bbox_overlaps(best, gt[gt_image == ids[(k + s) % n]]
                                      ).max() for s in SHIFTS])
        assert shuffled[k] == pytest.approx(want)
    # the GT boxes themselves fit their own images: never refused
    assert not fits_no_better_than_chance(gt_image, np.ones(2 * n), gt,
                                          gt_image, gt)[0]
    # the same boxes under the next image's id: refused
    moved = gt_image % n + 1
    assert fits_no_better_than_chance(moved, np.ones(2 * n), gt, gt_image,
                                      gt)[0]
