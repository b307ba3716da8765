"""AnchorMatchStatsHook counts equal mmdet's MaxIoUAssigner run independently."""
import types

import pytest
import torch
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from helpers import DEMO_CONFIG
from mmext.hooks import AnchorMatchStatsHook
from mmext.hooks.anchor_match_stats import summarize

CLASSES = ('Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear', 'Scratched')
SIZE = 128


def _sample(bboxes, labels):
    sample = DetDataSample(metainfo=dict(
        img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE),
        batch_input_shape=(SIZE, SIZE), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(bboxes, dtype=torch.float32),
        labels=torch.tensor(labels))
    sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                            labels=torch.zeros(0).long())
    return sample


def _independent_table(assigner, priors_per_image, samples, num_classes):
    """Per class: [GT boxes, positives, GT without positive], by brute force."""
    table = torch.zeros(num_classes, 3, dtype=torch.float64)
    for priors, sample in zip(priors_per_image, samples):
        gt = sample.gt_instances
        result = assigner.assign(InstanceData(priors=priors),
                                 InstanceData(bboxes=gt.bboxes,
                                              labels=gt.labels))
        for j, label in enumerate(gt.labels.tolist()):
            positives = int((result.gt_inds == j + 1).sum())
            table[label] += torch.tensor([1, positives, positives == 0],
                                         dtype=torch.float64)
    return table


@pytest.fixture(scope='module')
def observed(tmp_path_factory):
    torch.manual_seed(0)
    init_default_scope('mmdet')
    cfg = Config.fromfile(DEMO_CONFIG)
    detector = MODELS.build(cfg.model.detector)
    detector.train()
    hook = AnchorMatchStatsHook(interval=1)
    runner = types.SimpleNamespace(  # what before_train reads of a Runner
        work_dir=str(tmp_path_factory.mktemp('anchor_hook')), iter=0,
        model=detector, train_dataloader=types.SimpleNamespace(
            dataset=types.SimpleNamespace(metainfo=dict(classes=CLASSES))))
    hook.before_train(runner)
    seen_proposals = []
    counting_assign = detector.roi_head.bbox_assigner.assign

    def spy(pred_instances, gt_instances, *args, **kwargs):
        seen_proposals.append(pred_instances.priors.detach().clone())
        return counting_assign(pred_instances, gt_instances, *args, **kwargs)

    detector.roi_head.bbox_assigner.assign = spy
    samples = [
        # a wide box, a narrow one (h/w 0.4), and a 3 px box no anchor fits
        _sample([[10, 20, 90, 60], [30, 80, 80, 100], [60, 60, 63, 63]],
                [2, 0, 1]),
        _sample([[5, 5, 40, 120], [50, 50, 120, 110]], [3, 0]),
    ]
    inputs = torch.rand(2, 3, SIZE, SIZE)
    detector.loss(inputs, samples)
    feats = detector.extract_feat(inputs)
    anchors = detector.rpn_head.prior_generator.grid_priors(
        [f.shape[-2:] for f in feats], device='cpu')
    anchors = torch.cat(anchors)
    return dict(hook=hook, detector=detector, samples=samples, cfg=cfg,
                anchors=anchors, proposals=seen_proposals)


def test_rpn_counts_equal_max_iou_assigner(observed):
    rpn = observed['cfg'].model.detector.train_cfg.rpn.assigner.to_dict()
    rpn.pop('type')
    assigner = MaxIoUAssigner(**rpn)
    expected = _independent_table(assigner, [observed['anchors']] * 2,
                                  observed['samples'], len(CLASSES))
    assert torch.equal(observed['hook'].tables['rpn'], expected)
    # the 3 px Chipped box got no positive anchor: the share is visible
    assert expected[1, 2] == 1


def test_rcnn_counts_equal_max_iou_assigner(observed):
    rcnn = observed['cfg'].model.detector.train_cfg.rcnn.assigner.to_dict()
    rcnn.pop('type')
    assert len(observed['proposals']) == 2
    expected = _independent_table(MaxIoUAssigner(**rcnn),
                                  observed['proposals'], observed['samples'],
                                  len(CLASSES))
    assert torch.equal(observed['hook'].tables['rcnn'], expected)


def test_summary_and_unwrap(observed):
    hook, detector = observed['hook'], observed['detector']
    summary = hook.tables['rpn']
    record = summarize({'rpn': summary}, CLASSES)
    assert record['rpn']['all']['num_gts'] == 5
    assert record['rpn']['Broken']['pos_per_gt'] == float(summary[2, 1])
    assert record['rpn']['Scratched']['pos_per_gt'] is None
    hook.after_train(None)
    assert 'assign' not in vars(detector.rpn_head.assigner)
    assert 'loss' not in vars(detector)


def test_tables_are_not_trivial(observed):
    rpn, rcnn = observed['hook'].tables['rpn'], observed['hook'].tables['rcnn']
    assert rpn[:, 0].sum() == 5 and rcnn[:, 0].sum() == 5
    assert rpn[:, 1].sum() > 5  # several anchors per box on average
    assert rcnn[:, 1].sum() > 0
