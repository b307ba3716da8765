"""faster-coco-eval backend against pycocotools, the oracle: same numbers.

Seeded random data with crowd boxes, score ties and more than 100
detections per image and class; every match, count and AP of the
faster-coco-eval path must equal what pycocotools' COCOeval gives.
"""
import json
import sys

import numpy as np
import pytest

pytest.importorskip('faster_coco_eval')  # requirements/runtime.txt

from analysis_fixtures import load_tool  # noqa: E402
from mmext.evaluation.coco_match import (ap_per_class, evaluate_boxes,  # noqa
                                       mean_ap, resolve_backend)
from mmext.evaluation.error_breakdown import ERROR_TYPES, error_breakdown  # noqa
from mmext.evaluation.predictions import load_detections  # noqa: E402
from mmext.evaluation.threshold_sweep import sweep_thresholds  # noqa: E402
from mmext.data import load_coco  # noqa: E402
from mmext.utils import MMExtError  # noqa: E402

MATCH_FIELDS = ('det_id', 'det_image', 'det_label', 'det_score', 'det_tp',
                'det_ignored', 'det_gt', 'gt_id', 'gt_image', 'gt_label',
                'gt_ignored')


def random_files(tmp_path, seed, num_images=6, crowd=0.3, crowded=1):
    """COCO json + results: crowd boxes, tied scores, a crowded image.

    The first ``crowded`` images get 250 detections of one class, past the
    100 per image and class COCOeval keeps for AP.
    """
    rng = np.random.default_rng(seed)
    anns, res = [], []
    for img in range(1, num_images + 1):
        boxes = []
        for _ in range(int(rng.integers(0, 8))):
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(8, 60, 2)
            cat = int(rng.integers(1, 4))
            boxes.append((cat, [x, y, w, h]))
            anns.append(dict(id=len(anns) + 1, image_id=img, category_id=cat,
                             bbox=[x, y, w, h], area=w * h,
                             iscrowd=int(rng.random() < crowd)))
        n_det = 250 if img <= crowded else int(rng.integers(0, 30))
        for _ in range(n_det):
            if boxes and rng.random() < 0.6:
                cat, (x, y, w, h) = boxes[int(rng.integers(len(boxes)))]
                x, y = x + rng.normal(0, 0.15 * w), y + rng.normal(0, 0.15 * h)
            else:
                cat = int(rng.integers(1, 4))
                x, y = rng.uniform(0, 150, 2)
                w, h = rng.uniform(8, 60, 2)
            if img <= crowded:
                cat = 1
            # two decimals: many exact score ties
            res.append(dict(image_id=img, category_id=cat, bbox=[x, y, w, h],
                            score=float(np.round(rng.random(), 2))))
    data = dict(
        images=[dict(id=i, file_name=f'{i}.jpg', width=220, height=220)
                for i in range(1, num_images + 1)],
        annotations=anns,
        categories=[dict(id=k, name=n) for k, n in ((1, 'a'), (2, 'b'),
                                                    (3, 'c'))])
    gt_path, res_path = tmp_path / f'gt{seed}.json', tmp_path / f'r{seed}.json'
    gt_path.write_text(json.dumps(data))
    res_path.write_text(json.dumps(res))
    table = load_coco(str(gt_path))
    return str(gt_path), str(res_path), table, load_detections(
        str(res_path), table)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize('match_iou,max_dets,iou_thrs', [
    (0.5, 100, None), (0.75, 300, None), (0.5, 100, [0.5])])
def test_matches_and_ap_equal_pycocotools(tmp_path, seed, match_iou,
                                          max_dets, iou_thrs):
    _, _, gt, dets = random_files(tmp_path, seed)
    assert gt.ignore.any()
    ref_ev, ref = evaluate_boxes(gt, dets, match_iou, max_dets, iou_thrs,
                                 backend='pycocotools')
    ev, m = evaluate_boxes(gt, dets, match_iou, max_dets, iou_thrs,
                           backend='faster-coco-eval')
    assert type(ev).__module__.startswith('faster_coco_eval')
    assert m.det_ignored.any()  # detections on crowd boxes
    # image 1 has 250 detections of class 'a': COCOeval keeps the top ones
    assert (m.det_image == 1).sum() == min(250, max(100, max_dets))
    for name in MATCH_FIELDS:
        np.testing.assert_array_equal(getattr(m, name), getattr(ref, name),
                                      err_msg=name)
    # the compiled accumulate may round a precision 1 ulp differently
    np.testing.assert_allclose(ap_per_class(ev), ap_per_class(ref_ev),
                               rtol=0, atol=1e-12)
    assert mean_ap(ev, 0.5) == pytest.approx(mean_ap(ref_ev, 0.5), abs=1e-12)


@pytest.mark.parametrize('seed', [4, 5])
def test_sweep_and_breakdown_unchanged(tmp_path, seed):
    _, _, gt, dets = random_files(tmp_path, seed, num_images=10)
    thr = np.linspace(0, 1, 21)
    fast = sweep_thresholds(gt, dets, thr, backend='faster-coco-eval')
    ref = sweep_thresholds(gt, dets, thr, backend='pycocotools')
    for a, b in zip(fast.curves, ref.curves):
        for name in ('tp', 'fp', 'fn', 'precision', 'recall', 'f1',
                     'detection_rate', 'pr_recall', 'pr_precision'):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name),
                                          err_msg=f'{a.name} {name}')
        assert a.ap == pytest.approx(b.ap, abs=1e-12, nan_ok=True)
        assert a.ap50 == pytest.approx(b.ap50, abs=1e-12, nan_ok=True)
    for mode in ('tide', 'coco'):
        e_fast = error_breakdown(gt, dets, mode, backend='faster-coco-eval')
        e_ref = error_breakdown(gt, dets, mode, backend='pycocotools')
        assert list(e_fast.det_error) == list(e_ref.det_error)
        for kind in ERROR_TYPES:
            np.testing.assert_array_equal(e_fast.counts[kind],
                                          e_ref.counts[kind])
            np.testing.assert_allclose(e_fast.dap[kind], e_ref.dap[kind],
                                       rtol=0, atol=1e-12)


def test_without_faster_coco_eval_falls_back(tmp_path, monkeypatch):
    """A user without the package gets pycocotools' numbers, no error."""
    _, _, gt, dets = random_files(tmp_path, 6)
    with_it = sweep_thresholds(gt, dets)
    # None in sys.modules makes `import faster_coco_eval` raise ImportError,
    # as on a machine where it is not installed
    monkeypatch.setitem(sys.modules, 'faster_coco_eval', None)
    assert resolve_backend('auto') == 'pycocotools'
    without = sweep_thresholds(gt, dets)
    assert type(without.matches) is type(with_it.matches)
    np.testing.assert_array_equal(without.curve('all').tp,
                                  with_it.curve('all').tp)
    assert without.map == pytest.approx(with_it.map, abs=1e-12)
    with pytest.raises(MMExtError, match='not installed'):
        resolve_backend('faster-coco-eval')
    with pytest.raises(MMExtError, match='not one of'):
        resolve_backend('detectron2')


def test_cli_backend_flag(tmp_path):
    gt_path, res_path, _, _ = random_files(tmp_path, 7)
    tool = load_tool('threshold_sweep')
    reports = {}
    for backend in ('pycocotools', 'faster-coco-eval'):
        out = tmp_path / backend
        assert tool.main([res_path, '--gt', gt_path, '--backend', backend,
                          '--out-dir', str(out), '--no-plots']) == 0
        reports[backend] = json.loads((out / 'sweep.json').read_text())
    a, b = reports['pycocotools'], reports['faster-coco-eval']
    assert a['sweep'] == b['sweep']
    assert a['map'] == pytest.approx(b['map'], abs=1e-12)
