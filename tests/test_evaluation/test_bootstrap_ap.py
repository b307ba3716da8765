"""Bootstrap AP: identity = pycocotools, a resample = COCOeval on copies."""
import json

import numpy as np
import pytest

from mmext.evaluation.bootstrap_ap import (class_ap, eval_matches,
                                         paired_bootstrap, resample_weights)
from mmext.evaluation.coco_match import (ap_per_class, coco_from_detections,
                                       coco_from_table, run_cocoeval)
from mmext.evaluation.predictions import Detections
from mmext.data import load_coco

NAMES = ['a', 'b', 'c']


def make_gt(path, num_images=40, seed=0, copies=None):
    """Random GT (one crowd box); ``copies[i]`` = times image i is repeated
    (as new images) for the duplicated-dataset reference."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    boxes = {}
    for i in range(num_images):
        boxes[i] = []
        for _ in range(int(rng.integers(0, 5))):
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(8, 60, 2)
            boxes[i].append((int(rng.integers(0, 3)), [x, y, w, h]))
    copies = copies if copies is not None else np.ones(num_images, int)
    new_id = 0
    mapping = {}
    for i in range(num_images):
        for _ in range(int(copies[i])):
            new_id += 1
            mapping.setdefault(i, []).append(new_id)
            images.append(dict(id=new_id, file_name=f'{new_id}.png',
                               width=224, height=224))
            for j, (c, b) in enumerate(boxes[i]):
                anns.append(dict(id=len(anns) + 1, image_id=new_id,
                                 category_id=c + 1, bbox=b,
                                 area=b[2] * b[3],
                                 iscrowd=int(i == 3 and j == 0)))
    cats = [dict(id=k + 1, name=n) for k, n in enumerate(NAMES)]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return boxes, mapping


def make_dets(boxes, mapping, seed=1, drop_fp_of=None):
    """Jittered true boxes (some with the wrong class) plus random FPs."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, items in boxes.items():
        per_image = []
        for c, (x, y, w, h) in items:
            if rng.random() < 0.85:
                lab = c if rng.random() < 0.9 else int(rng.integers(0, 3))
                j = rng.normal(0, 4, 4)
                per_image.append((lab, rng.uniform(0.3, 1.0),
                                  [x + j[0], y + j[1], x + w + j[2],
                                   y + h + j[3]]))
        for _ in range(3):
            x, y = rng.uniform(0, 150, 2)
            lab = int(rng.integers(0, 3))
            score = rng.uniform(0.0, 0.7)  # drawn always: same stream
            if drop_fp_of is not None and lab == drop_fp_of:
                continue
            per_image.append((lab, score, [x, y, x + 30, y + 30]))
        for new_id in mapping.get(i, []):
            for lab, s, b in per_image:
                rows.append((new_id, lab, s, *b))
    a = np.array(rows, float).reshape(-1, 7)
    return Detections(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64),
                      a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6])


def evaluate(gt_path, dets):
    gt = load_coco(gt_path, NAMES)
    coco = coco_from_table(gt)
    return run_cocoeval(coco, coco_from_detections(coco, dets))


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('boot') / 'gt.json')
    boxes, mapping = make_gt(path)
    return path, boxes, mapping


def test_identity_resample_equals_pycocotools(base):
    path, boxes, mapping = base
    ev = evaluate(path, make_dets(boxes, mapping))
    m = eval_matches(ev)
    # equal up to the order of the float sums (1e-16 here)
    np.testing.assert_allclose(class_ap(m)[0], ap_per_class(ev), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(class_ap(m, iou_thr=0.5)[0],
                               ap_per_class(ev, 0.5), rtol=0, atol=1e-12)
    assert np.all(ap_per_class(ev) > 0.1)  # a real, non-trivial case


def test_resample_equals_cocoeval_on_duplicated_images(base, tmp_path):
    path, boxes, mapping = base
    m = eval_matches(evaluate(path, make_dets(boxes, mapping)))
    weights = resample_weights(len(boxes), 3, seed=5)
    for w in weights:
        dup_path = str(tmp_path / 'dup.json')
        dup_boxes, dup_map = make_gt(dup_path, copies=w)
        ev = evaluate(dup_path, make_dets(dup_boxes, dup_map))
        np.testing.assert_allclose(class_ap(m, w[None])[0], ap_per_class(ev),
                                   rtol=0, atol=1e-12)


def test_identical_arms_give_zero_interval(base):
    path, boxes, mapping = base
    m = eval_matches(evaluate(path, make_dets(boxes, mapping)))
    rows = paired_bootstrap([m], [m], NAMES, num_resamples=50)
    for r in rows:
        assert r['delta'] == 0 and r['ci_low'] == 0 and r['ci_high'] == 0


def test_planted_class_shift_is_found(base):
    """The arm drops the false positives of class b only: b's AP rises with
    an interval above 0; a and c are unchanged (interval exactly 0)."""
    path, boxes, mapping = base
    control = eval_matches(evaluate(path, make_dets(boxes, mapping)))
    arm = eval_matches(evaluate(path, make_dets(boxes, mapping,
                                                drop_fp_of=1)))
    rows = {r['class']: r for r in paired_bootstrap(
        [control], [arm], NAMES, num_resamples=300, seed=1)}
    assert rows['b']['delta'] > 0 and rows['b']['ci_low'] > 0
    assert rows['b']['p_le_0'] < 0.025  # removing FPs never lowers AP
    for name in ('a', 'c'):
        assert rows[name]['delta'] == rows[name]['ci_low'] == \
            rows[name]['ci_high'] == 0


def test_seeds_pair_and_mismatches_are_errors(base, tmp_path):
    from mmext.utils import MMExtError
    path, boxes, mapping = base
    m = eval_matches(evaluate(path, make_dets(boxes, mapping)))
    with pytest.raises(MMExtError, match='same number of seeds'):
        paired_bootstrap([m, m], [m], NAMES)
    other_path = str(tmp_path / 'other.json')
    other_boxes, other_map = make_gt(other_path, num_images=30)
    other = eval_matches(evaluate(other_path, make_dets(other_boxes,
                                                        other_map)))
    with pytest.raises(MMExtError, match='different validation images'):
        paired_bootstrap([m], [other], NAMES)
