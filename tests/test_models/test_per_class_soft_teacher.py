"""PerClassSoftTeacher on the real mmdet SoftTeacher, tiny images.

The reference is mmdet's own SoftTeacher with the same weights, the same
batch and the same random seed: a float config must give its losses
exactly, a per-class list of equal values the scalar result, and a list of
different values must hand mmdet's loss methods exactly the boxes with
``score > thr[label]`` (checked box by box against the teacher's output).
"""
import copy
import random

import numpy as np
import pytest
import torch

from helpers import tiny_semi_config

# The random-init teacher's top scores on this batch lie in 0.25-0.7, most
# below 0.35: these thresholds keep some boxes and drop others at every stage.
THR = dict(pseudo_label_initial_score_thr=0.255, rpn_pseudo_thr=0.265,
           cls_pseudo_thr=0.27)


@pytest.fixture(scope='module')
def setup(tiny_demo_root, tmp_path_factory):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.runner import Runner

    import mmext  # noqa: F401
    register_all_modules()
    cfg = tiny_semi_config(tiny_demo_root,
                           str(tmp_path_factory.mktemp('pc_work')))
    cfg.model.semi_train_cfg.update(THR)
    torch.manual_seed(0)
    reference = MODELS.build(cfg.model)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    data = reference.data_preprocessor(batch, True)
    return cfg, reference, data


def build(cfg, reference, **thr):
    from mmdet.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.type = 'PerClassSoftTeacher'
    model_cfg.semi_train_cfg.update(thr)
    model = MODELS.build(model_cfg)
    model.load_state_dict(reference.state_dict())
    return model


def losses_of(model, data, seed=0):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    model.train()
    out = model.loss(copy.deepcopy(data['inputs']),
                     copy.deepcopy(data['data_samples']))
    return {k: (sum(v) if isinstance(v, list) else v).detach()
            for k, v in out.items()}


def assert_same_losses(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_scalar_config_equals_mmdet_soft_teacher(setup):
    cfg, reference, data = setup
    expected = losses_of(reference, data)
    model = build(cfg, reference)
    assert_same_losses(losses_of(model, data), expected)
    # the unsupervised losses are really there (pseudo boxes survived)
    assert expected['unsup_loss_cls'] > 0


def test_equal_per_class_list_equals_scalar(setup):
    cfg, reference, data = setup
    expected = losses_of(reference, data)
    num = len(cfg.metainfo['classes'])
    model = build(cfg, reference, **{k: [v] * num for k, v in THR.items()})
    assert_same_losses(losses_of(model, data), expected)


def test_per_class_list_keeps_exactly_score_above_class_threshold(
        setup, monkeypatch):
    from mmdet.models.detectors import SoftTeacher
    cfg, reference, data = setup
    rpn = [0.3, 0.26, 0.28, 0.27, 0.29]
    cls = [0.27, 0.3, 0.26, 0.29, 0.28]
    model = build(cfg, reference, rpn_pseudo_thr=rpn, cls_pseudo_thr=cls)
    seen = {}

    def spy(name):
        original = getattr(SoftTeacher, name)

        def wrapper(self, x, *args):
            samples = args[-1] if name.startswith('rpn') else args[1]
            seen[name] = [(s.gt_instances.scores.clone(),
                           s.gt_instances.labels.clone()) for s in samples]
            return original(self, x, *args)
        monkeypatch.setattr(SoftTeacher, name, wrapper)

    spy('rpn_loss_by_pseudo_instances')
    spy('rcnn_cls_loss_by_pseudo_instances')
    captured = {}
    original_project = SoftTeacher.project_pseudo_instances

    def project(self, *args, **kwargs):
        # the student view's pseudo labels: what the stage filters start from
        out = original_project(self, *args, **kwargs)
        captured['initial'] = [(s.gt_instances.scores.clone(),
                                s.gt_instances.labels.clone()) for s in out]
        return out
    monkeypatch.setattr(SoftTeacher, 'project_pseudo_instances', project)
    losses_of(model, data)
    for name, thr in (('rpn_loss_by_pseudo_instances', rpn),
                      ('rcnn_cls_loss_by_pseudo_instances', cls)):
        dropped = kept_total = 0
        for (scores, labels), (got_s, got_l) in zip(captured['initial'],
                                                    seen[name]):
            # brute force: every initial box above its class threshold, in
            # order
            keep = [i for i in range(len(scores))
                    if scores[i].item() > np.float32(thr[labels[i].item()])]
            assert got_s.tolist() == scores[keep].tolist()
            assert got_l.tolist() == labels[keep].tolist()
            dropped += len(scores) - len(keep)
            kept_total += len(keep)
        assert dropped > 0 and kept_total > 0, name  # the case is not trivial


def test_initial_stage_per_class(setup, monkeypatch):
    """The initial filter is per class and jitter sees only kept boxes."""
    from mmdet.models.detectors import SoftTeacher
    cfg, reference, data = setup
    initial = [0.25, 0.27, 0.26, 0.28, 0.255]
    model = build(cfg, reference, pseudo_label_initial_score_thr=initial)
    jitter_inputs = []
    original = SoftTeacher.compute_uncertainty_with_aug

    def spy(self, x, samples):
        jitter_inputs.append([(s.gt_instances.scores.clone(),
                               s.gt_instances.labels.clone())
                              for s in samples])
        return original(self, x, samples)
    monkeypatch.setattr(SoftTeacher, 'compute_uncertainty_with_aug', spy)
    losses_of(model, data)
    for scores, labels in jitter_inputs[0]:
        thr = torch.tensor(initial, dtype=scores.dtype)[labels]
        assert bool((scores > thr).all())


def test_filter_error_falls_back_with_one_warning(setup, monkeypatch):
    import mmext.models.per_class_soft_teacher as module
    cfg, reference, data = setup
    expected = losses_of(reference, data)
    model = build(cfg, reference)
    # a corrupt threshold vector: indexing by label fails inside the filter
    for stage in model.pseudo_thresholds.stages.values():
        stage.values = np.zeros(0)
    warnings = []
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, **kw: warnings.append(msg))
    first = losses_of(model, data)
    second = losses_of(model, data)
    # fallback scalar = the configured float: mmdet's losses again
    assert_same_losses(first, expected)
    assert_same_losses(second, expected)
    assert len(warnings) == 1 and 'falling back' in warnings[0]
    assert model.pseudo_thresholds_in_force()['cls'] == [
        THR['cls_pseudo_thr']] * 5


def test_mixin_on_a_users_soft_teacher_subclass(setup):
    """A user's own SoftTeacher subclass (here one that overrides a loss
    method, as a multi-view detector would) gets the per-class filters by
    putting the mixin first, and trains exactly like PerClassSoftTeacher."""
    from mmdet.models.detectors import SoftTeacher
    from mmdet.registry import MODELS

    from mmext.models import PerClassPseudoThrMixin

    class UsersSoftTeacher(SoftTeacher):
        calls = 0

        def rpn_loss_by_pseudo_instances(self, x, batch_data_samples):
            UsersSoftTeacher.calls += 1
            return super().rpn_loss_by_pseudo_instances(x, batch_data_samples)

    @MODELS.register_module(force=True)
    class UsersPerClassSoftTeacher(PerClassPseudoThrMixin, UsersSoftTeacher):
        pass

    cfg, reference, data = setup
    thr = dict(rpn_pseudo_thr=[0.3, 0.26, 0.28, 0.27, 0.29],
               cls_pseudo_thr=[0.27, 0.3, 0.26, 0.29, 0.28])
    expected = losses_of(build(cfg, reference, **thr), data)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.type = 'UsersPerClassSoftTeacher'
    model_cfg.semi_train_cfg.update(thr)
    model = MODELS.build(model_cfg)
    model.load_state_dict(reference.state_dict())
    assert_same_losses(losses_of(model, data), expected)
    assert UsersSoftTeacher.calls == 1
    # and it differs from the scalar run: the lists did something
    assert not torch.equal(expected['unsup_loss_cls'],
                           losses_of(reference, data)['unsup_loss_cls'])
