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
