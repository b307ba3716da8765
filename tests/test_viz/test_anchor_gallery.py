"""GT boxes without a positive anchor, with their best anchor."""
import os

import numpy as np
import pytest

from helpers import ROOT
from mmext.anchors import load_fit_inputs
from mmext.anchors.coverage import anchor_coverage
from mmext.anchors.train_scale import scale_boxes
from mmext.viz.anchor_gallery import anchor_misses, write_anchor_gallery

CONFIG = os.path.join(ROOT, 'configs', 'soft_teacher',
                      'soft-teacher_faster-rcnn_tiny_demo.py')


@pytest.fixture(scope='module')
def measured(tiny_demo_root):
    inputs = load_fit_inputs(config=CONFIG, data_root=tiny_demo_root)
    # narrow anchors only: wide and tall boxes then lack positives
    spec = inputs.spec.replace(ratios=(1.0,))
    table = inputs.table.select(~inputs.table.ignore)
    scaled = scale_boxes(table, inputs.rules[0], spec.pad_size_divisor)
    return table, scaled, spec, anchor_coverage(scaled, spec,
                                                with_assigned=False)


def test_misses_are_the_boxes_without_positives_with_their_best_anchor(
        measured):
    table, scaled, spec, cov = measured
    misses = anchor_misses(table, scaled, spec, cov, k=1000)
    rows = sorted(m.row for ms in misses.values() for m in ms)
    assert rows == sorted(np.flatnonzero(cov.n_pos_iou == 0).tolist())
    assert rows, 'the case must have boxes without a positive anchor'
    for name, ms in misses.items():
        assert [m.max_iou for m in ms] == sorted(m.max_iou for m in ms)
        for m in ms:
            r = m.row
            assert table.class_names[table.label[r]] == name
            # the drawn anchor, back at training scale, has the exact
            # coverage's best IoU (an independent, vectorised computation)
            n = scaled.image_index[r]
            sx = scaled.img_w[r] / table.widths[n]
            sy = scaled.img_h[r] / table.heights[n]
            a = np.array(m.anchor) * [sx, sy, sx, sy]
            b = scaled.bboxes[r]
            iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            iou = inter / ((a[2] - a[0]) * (a[3] - a[1]) +
                           (b[2] - b[0]) * (b[3] - b[1]) - inter)
            assert iou == pytest.approx(cov.max_iou[r], abs=1e-6)
            assert iou < spec.pos_iou_thr


def test_gallery_files(measured, tiny_demo_root, tmp_path):
    table, scaled, spec, cov = measured
    out = write_anchor_gallery(table, scaled, spec, cov,
                               os.path.join(tiny_demo_root, 'images',
                                            'train_labeled'),
                               str(tmp_path), k=2)
    assert out['cases'] and not out['unreadable']
    assert all(os.path.getsize(p) > 1000 for p in out['images'])


def test_anchor_fit_gallery_flag(tiny_demo_root, tmp_path):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..',
                                    'test_tools'))
    from test_fuzz_inputs import run_tool
    code, _, err = run_tool('anchor_fit', [CONFIG, '--data-root',
                                           tiny_demo_root, '--gallery', '2'])
    assert code == 2 and '--out-dir' in err
    code, out, err = run_tool('anchor_fit', [
        CONFIG, '--data-root', tiny_demo_root, '--gallery', '2',
        '--num-ratios', '0', '--no-progress', '--out-dir', str(tmp_path)])
    assert code == 0, err
    assert 'GT boxes without a positive anchor' in out
    assert (tmp_path / 'no_positive_anchor').is_dir()
