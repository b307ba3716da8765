"""Boxes at training scale are what mmdet's own Resize transform produces."""
import numpy as np
import pytest
from mmengine.config import Config

from mmext.anchors import anchor_spec_from_config, resize_rules_from_pipeline, scale_boxes
from mmext.anchors.train_scale import ResizeRule
from mmext.data import build_box_table
from mmext.utils import MMExtError
from mmext.utils.config import train_dataset_cfg


def _table(sizes, boxes):
    images = [dict(id=k, file_name=f'{k}.jpg', width=w, height=h)
              for k, (w, h) in enumerate(sizes)]
    rows = [(img, 0, *b, False) for img, b in boxes]
    return build_box_table(('a', ), images, rows, 'test', [])


def _mmdet_resize(rule: ResizeRule, size, box):
    from mmdet.registry import TRANSFORMS
    from mmdet.structures.bbox import HorizontalBoxes
    import mmdet.datasets.transforms  # noqa: F401  (registers Resize)
    t = TRANSFORMS.build(dict(type='Resize', scale=rule.scale, keep_ratio=rule.keep_ratio))
    w, h = size
    res = t(dict(img=np.zeros((h, w, 3), np.uint8),
                 gt_bboxes=HorizontalBoxes(np.array([box], np.float32))))
    return res['img_shape'], res['gt_bboxes'].numpy()[0]


@pytest.mark.parametrize('keep_ratio', [True, False])
def test_scale_boxes_matches_mmdet_resize(keep_ratio):
    sizes = [(200, 200), (1333, 801), (97, 333), (640, 480)]
    boxes = [(0, (10.0, 20.0, 150.0, 60.5)), (1, (0.0, 3.0, 1333.0, 700.0)),
             (2, (5.5, 100.0, 90.0, 333.0)), (3, (300.0, 10.0, 639.0, 479.0))]
    rule = ResizeRule('t', (1333, 800), 1.0, keep_ratio, True)
    got = scale_boxes(_table(sizes, boxes), rule, pad_size_divisor=32)
    for k, (img, box) in enumerate(boxes):
        (h, w), ref = _mmdet_resize(rule, sizes[img], box)
        assert (got.img_w[k], got.img_h[k]) == (w, h)
        assert got.pad_w[k] == -(-w // 32) * 32 and got.pad_h[k] == -(-h // 32) * 32
        np.testing.assert_allclose(got.bboxes[k], ref, rtol=1e-6)  # mmdet uses float32


def test_random_resize_ends_and_middle():
    # mmdet's Soft Teacher default: short side drawn from 400..1200, long <= 1333.
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='RandomResize', scale=[(1333, 400), (1333, 1200)], keep_ratio=True),
                dict(type='MultiBranch', sup=dict(type='PackDetInputs'))]
    rules = resize_rules_from_pipeline(pipeline)
    assert [r.scale for r in rules] == [(1333, 400), (1333, 800), (1333, 1200)]
    # mmcv's RandomResize samples every scale between the two ends.
    from mmcv.transforms import RandomResize
    for _ in range(20):
        s = RandomResize._random_sample([(1333, 400), (1333, 1200)])
        assert rules[0].scale[1] <= s[1] <= rules[-1].scale[1]
    choice = resize_rules_from_pipeline([dict(
        type='RandomChoiceResize', scales=[(1333, 640), (1333, 800), (1333, 672),
                                           (1333, 736)], keep_ratio=True)])
    assert [r.scale for r in choice] == [(1333, 640), (1333, 736), (1333, 800)]
    ratio = resize_rules_from_pipeline([dict(type='RandomResize', scale=(1000, 600),
                                             ratio_range=(0.5, 1.5), keep_ratio=True)])
    assert [r.scale for r in ratio] == [(500, 300), (1000, 600), (1500, 900)]


def test_unsupported_pipeline_is_one_clear_error():
    with pytest.raises(MMExtError, match='Mosaic'):
        resize_rules_from_pipeline([dict(type='Mosaic'), dict(type='Resize', scale=(640, 640))],
                                   'x.py')
    with pytest.raises(MMExtError, match='x.py: .*FixShapeResize'):
        resize_rules_from_pipeline([dict(type='FixShapeResize', width=640, height=640)], 'x.py')


def test_demo_config_spec_and_rules():
    from helpers import DEMO_CONFIG
    cfg = Config.fromfile(DEMO_CONFIG)
    spec = anchor_spec_from_config(cfg)
    det = cfg.model.detector
    gen = det.rpn_head.anchor_generator
    assert spec.ratios == tuple(gen.ratios) and spec.scales == tuple(gen.scales)
    assert [s[0] for s in spec.strides] == list(gen.strides)
    assert spec.pos_iou_thr == det.train_cfg.rpn.assigner.pos_iou_thr
    assert spec.min_pos_iou == det.train_cfg.rpn.assigner.min_pos_iou
    assert spec.pad_size_divisor == det.data_preprocessor.pad_size_divisor
    # Base anchors are mmdet's own, built from the config's dict.
    from mmdet.registry import TASK_UTILS
    ref = TASK_UTILS.build(gen).base_anchors
    for ours, theirs in zip(spec.base_anchors(), ref):
        np.testing.assert_array_equal(ours, theirs.double().numpy())
    rules = resize_rules_from_pipeline(train_dataset_cfg(cfg).pipeline)
    assert [r.scale for r in rules] == [(320, 224), (320, 256), (320, 288)]
