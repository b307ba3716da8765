"""AP by box size against pycocotools' own small/medium/large summary."""
import numpy as np
import pytest

from mmext.data import load_coco
from mmext.evaluation.ap_by_size import ap_by_size, size_ranges
from mmext.evaluation.predictions import load_detections
from test_threshold_sweep import coco_gt, coco_results, pycoco, random_case


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_coco_ranges_equal_pycocotools_summary(tmp_path, seed):
    """The 'all' rows with COCO's edges are pycocotools' APs, APm, APl
    (stats[3:6]) of a standard evaluation on the same files; with a range
    that holds every box, per class AP equals the whole evaluation's."""
    rng = np.random.default_rng(seed)
    images, anns, dets = random_case(rng, num_images=30, max_gt=5,
                                     max_det=8)
    # some boxes above 32 px (the random case is 5-40 px)
    anns += [(1, 1, 10, 10, 60, 50, 0), (2, 2, 5, 5, 70, 60, 0)]
    dets += [(1, 1, 11, 10, 60, 50, 0.9), (2, 2, 5, 6, 70, 60, 0.8)]
    gt_path = coco_gt(images, anns, tmp_path / 'gt.json')
    res_path = coco_results(dets, tmp_path / 'res.json')
    table = load_coco(gt_path)
    rows = ap_by_size(table, load_detections(res_path, table))
    ref = pycoco(gt_path, dets)
    got = {r['size']: r['ap'] for r in rows if r['class'] == 'all'}
    labels = [label for label, _, _ in size_ranges((0, 32, 96, 1e5))]
    for label, want in zip(labels, ref.stats[3:6]):
        if want < 0:
            assert got[label] is None
        else:
            assert got[label] == pytest.approx(want, abs=1e-12)
    whole = ap_by_size(table, load_detections(res_path, table), (0, 1e5))
    assert [r['ap'] for r in whole if r['class'] == 'all'][0] == \
        pytest.approx(ref.stats[0], abs=1e-12)


def test_num_gt_counts_the_boxes_in_each_range(tmp_path):
    anns = [(1, 1, 0, 0, 10, 10, 0), (1, 1, 20, 20, 40, 40, 0),
            (1, 2, 0, 0, 100, 100, 0), (1, 2, 0, 0, 5, 5, 1)]  # crowd
    gt_path = coco_gt([(1, 200, 200)], anns, tmp_path / 'gt.json')
    res_path = coco_results([(1, 1, 0, 0, 10, 10, 0.9)], tmp_path / 'r.json')
    table = load_coco(gt_path)
    rows = ap_by_size(table, load_detections(res_path, table), (0, 32, 1e5))
    counts = {(r['class'], r['size']): r['num_gt'] for r in rows}
    name1, name2 = table.class_names
    assert counts[(name1, '0-32px')] == 1 and counts[(name1, '>=32px')] == 1
    assert counts[(name2, '0-32px')] == 0 and counts[(name2, '>=32px')] == 1
    with pytest.raises(ValueError):
        size_ranges((32, 16))
