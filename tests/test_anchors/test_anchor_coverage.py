"""Exact coverage agrees with mmdet's AnchorGenerator + MaxIoUAssigner, image by image."""
import numpy as np
import pytest

from mmext.anchors import AnchorSpec, anchor_coverage, mmdet_coverage, scale_boxes
from mmext.anchors.train_scale import ScaledBoxes, fixed_scale_rule
from mmext.data import load_boxes


def random_boxes(seed: int, num_images: int, max_per_image: int) -> ScaledBoxes:
    """Boxes of every size and shape (h/w from 1/12 to 12), some on integers."""
    rng = np.random.default_rng(seed)
    parts, img_w, img_h, index = [], [], [], []
    for k in range(num_images):
        w, h = (int(v) for v in rng.integers(50, 260, 2))
        m = int(rng.integers(1, max_per_image + 1))
        cx, cy = rng.uniform(0, w, m), rng.uniform(0, h, m)
        bw = np.exp(rng.uniform(np.log(3), np.log(w), m))
        bh = bw * np.exp(rng.uniform(-2.5, 2.5, m))
        b = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        b[:, 0::2] = np.clip(b[:, 0::2], 0, w)
        b[:, 1::2] = np.clip(b[:, 1::2], 0, h)
        if k % 3 == 0:  # integer boxes make exact IoU ties on the grid
            b = np.round(b)
        b = b[(b[:, 2] - b[:, 0] >= 1) & (b[:, 3] - b[:, 1] >= 1)]
        parts.append(b)
        img_w += [w] * len(b)
        img_h += [h] * len(b)
        index += [k] * len(b)
    img_w, img_h = np.array(img_w), np.array(img_h)
    pad = lambda s: (np.ceil(s / 32) * 32).astype(np.int64)  # noqa: E731
    return ScaledBoxes(np.concatenate(parts), img_w, img_h, pad(img_w), pad(img_h),
                       np.array(index))


def assert_same(ours, theirs):
    np.testing.assert_allclose(ours.max_iou, theirs.max_iou, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.n_pos_iou, theirs.n_pos_iou)
    np.testing.assert_array_equal(ours.n_assigned, theirs.n_assigned)


SPECS = {
    'default': AnchorSpec(),
    'user ratios, 2 scales': AnchorSpec(ratios=(0.2, 0.35, 0.5, 1.0, 2.0), scales=(4.0, 8.0)),
    'border 0, centre 0.5': AnchorSpec(allowed_border=0.0, center_offset=0.5),
    'first max only, 0.5/0.2': AnchorSpec(gt_max_assign_all=False, pos_iou_thr=0.5,
                                         min_pos_iou=0.2),
}


@pytest.mark.parametrize('name', list(SPECS))
def test_random_boxes_match_mmdet(name):
    boxes = random_boxes(seed=3, num_images=12, max_per_image=7)
    spec = SPECS[name]
    ours = anchor_coverage(boxes, spec, chunk_size=20)  # several chunks
    assert_same(ours, mmdet_coverage(boxes, spec))
    # The random set really exercises every rule.
    assert (ours.max_iou >= spec.pos_iou_thr).any()
    assert ((ours.max_iou < spec.pos_iou_thr) & (ours.max_iou >= spec.min_pos_iou)).any()


def test_float32_training_numbers_are_close():
    boxes = random_boxes(seed=5, num_images=6, max_per_image=5)
    ours = anchor_coverage(boxes, AnchorSpec())
    theirs = mmdet_coverage(boxes, AnchorSpec(), dtype='float32')
    np.testing.assert_allclose(ours.max_iou, theirs.max_iou, atol=1e-5)


def test_neu_det_matches_mmdet(neu_det_root):
    table = load_boxes(f'{neu_det_root}/ANNOTATIONS', img_dir=f'{neu_det_root}/IMAGES')
    # Every class (names start the file names), scratches' 22:1 boxes included.
    rng = np.random.default_rng(0)
    picks = []
    for cls in table.class_names:
        ids = [i for i, f in zip(table.image_ids, table.file_names) if f.startswith(cls)]
        picks += list(rng.choice(ids, 2, replace=False))
    sample = table.select(np.isin(table.image_id, picks))
    spec = AnchorSpec(ratios=(0.2, 0.35, 0.5, 1.0, 2.0))
    boxes = scale_boxes(sample, fixed_scale_rule((320, 320)), spec.pad_size_divisor)
    assert len(boxes.bboxes) >= 12
    assert_same(anchor_coverage(boxes, spec), mmdet_coverage(boxes, spec))


def test_empty_grid_and_no_boxes():
    boxes = random_boxes(seed=1, num_images=2, max_per_image=2)
    # allowed_border 0 with anchors larger than the image: no valid anchor.
    spec = AnchorSpec(strides=((64, 64), ), scales=(16.0, ), allowed_border=0.0)
    ours = anchor_coverage(boxes, spec)
    assert (ours.max_iou == 0).all() and (ours.n_assigned == 0).all()
    assert_same(ours, mmdet_coverage(boxes, spec))
    none = anchor_coverage(boxes.take(np.zeros(len(boxes.bboxes), bool)), AnchorSpec())
    assert len(none.max_iou) == 0
