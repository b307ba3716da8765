"""TeacherCompetenceHook and the calibrated policy in real Soft Teacher runs.

Run A: 4 iterations, validation and checkpoint at 2 and 4, calibrated
thresholds at the rpn and cls stages. A probe keeps the teacher's validation
predictions; the test matches them with pycocotools independently and checks
the recorded TP/FP curves and the thresholds in force against that. Run B
stops after 3, resumes from ``iter_2.pth``: one record per validation, and
the thresholds the resumed run starts from are the checkpoint's.
"""
import json
import os

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook

from helpers import tiny_semi_config
from mmext.engine import build_runner
from mmext.runs.teacher_competence import calibrated_threshold
from test_checkpoint_contract import StopAfter

# a 4-iteration teacher is weak: a low target (the bound is the plain
# precision at confidence 0.5) lets the classes it has any hit of calibrate
CALIBRATED = dict(type='calibrated', warmup_thr=0.5, precision_target=0.01,
                  confidence=0.5, floor=0.0, ceiling=1.0)


class TeacherPredictionProbe(Hook):
    """The teacher pass's predictions of every validation (plain numpy)."""
    priority = 'LOWEST'

    def __init__(self):
        self.by_val = []
        self._now = []

    def before_val_epoch(self, runner):
        self._now = []

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None):
        if runner.model.semi_test_cfg.get('predict_on') == 'teacher':
            for s in outputs:
                p = s.pred_instances
                self._now.append((s.img_id, p.bboxes.numpy().copy(),
                                  p.scores.numpy().copy(),
                                  p.labels.numpy().copy()))

    def after_val_epoch(self, runner, metrics=None):
        self.by_val.append((runner.iter, self._now))


class ThresholdsPerIteration(Hook):
    """The thresholds in force at the start of every training iteration."""
    priority = 'LOWEST'

    def __init__(self):
        self.seen = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.seen[runner.iter] = runner.model.pseudo_thresholds.in_force()


def _config(root, work_dir):
    cfg = tiny_semi_config(root, work_dir, max_iters=4, val_interval=2)
    cfg.model.type = 'PerClassSoftTeacher'
    cfg.model.semi_train_cfg.pseudo_label_initial_score_thr = 0.0
    cfg.model.semi_train_cfg.rpn_pseudo_thr = dict(CALIBRATED)
    cfg.model.semi_train_cfg.cls_pseudo_thr = dict(CALIBRATED,
                                                   not_reached='ceiling')
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] == 'MeanTeacherHook'] + [
        dict(type='TeacherCompetenceHook'), dict(type='PseudoThresholdHook')]
    cfg.default_hooks.checkpoint.interval = 2
    return cfg


def _records(work_dir):
    with open(os.path.join(work_dir, 'teacher_competence.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def runs(tiny_demo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('competence')
    a_dir, b_dir = str(tmp / 'a'), str(tmp / 'b')
    runner_a = build_runner(_config(tiny_demo_root, a_dir))
    probe = TeacherPredictionProbe()
    seen_a = ThresholdsPerIteration()
    runner_a.register_hook(probe)
    runner_a.register_hook(seen_a)
    runner_a.train()
    first_b = build_runner(_config(tiny_demo_root, b_dir))
    first_b.register_hook(StopAfter(3))
    first_b.train()
    cfg = _config(tiny_demo_root, b_dir)
    cfg.resume, cfg.load_from = True, os.path.join(b_dir, 'iter_2.pth')
    runner_b = build_runner(cfg)
    seen_b = ThresholdsPerIteration()
    runner_b.register_hook(seen_b)
    runner_b.train()
    return dict(a=a_dir, b=b_dir, runner_a=runner_a, probe=probe,
                root=tiny_demo_root, seen_a=seen_a.seen, seen_b=seen_b.seen)


def _reference(root, predictions, tmp_path):
    """TP/FP per class at every threshold: pycocotools matches + numpy."""
    import contextlib
    import io
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    results = [dict(image_id=int(img), category_id=int(lab) + 1,
                    bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]),
                          float(b[3] - b[1])], score=float(s))
               for img, boxes, scores, labels in predictions
               for b, s, lab in zip(boxes, scores, labels)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(os.path.join(root, 'annotations', 'val.json'))
        ev = COCOeval(gt, gt.loadRes(results), 'bbox')
        ev.params.iouThrs = np.array([0.5])
        ev.params.maxDets = [1, 10, 10000]
        ev.evaluate()
    return ev


def test_records_equal_pycocotools_and_thresholds_follow(runs, tmp_path):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), 'test_evaluation'))
    records = _records(runs['a'])
    assert [r['iter'] for r in records] == [2, 4]
    assert all(r['model'] == 'teacher' for r in records)
    last = records[-1]
    assert last['num_images'] == 8
    iteration, predictions = runs['probe'].by_val[-1]
    assert iteration == 4 and len(predictions) == 8
    ev = _reference(runs['root'], predictions, tmp_path)
    from test_teacher_competence import reference_counts
    ref = reference_counts(ev, np.asarray(last['thresholds']))
    for k, name in enumerate(last['classes']):
        tp, fp = ref[k + 1]
        assert last['tp'][name] == tp.tolist(), name
        assert last['fp'][name] == fp.tolist(), name
    # the thresholds in force: calibrated from the last record
    state = runs['runner_a'].model.pseudo_thresholds
    for stage, not_reached in (('rpn', 0.5), ('cls', 1.0)):
        for k, name in enumerate(last['classes']):
            thr = calibrated_threshold(last['thresholds'], last['tp'][name],
                                       last['fp'][name], 0.01, 0.5)
            expected = not_reached if thr is None else thr
            assert state.stages[stage].values[k] == pytest.approx(expected)
    assert any(state.stages['rpn'].adapted), 'no class calibrated at all'


def test_scalars_reach_the_log(runs):
    from mmext.runs.scalars import scalar_records
    keys = {k for r in scalar_records(runs['a']) for k in r}
    assert any(k.startswith('competence/') and k.endswith('/thr_at_target')
               or '/competence/' in k for k in keys), sorted(keys)[:20]


def test_resume_keeps_one_record_per_validation_and_the_state(runs):
    assert [r['iter'] for r in _records(runs['b'])] == [2, 4]
    # mmengine saves iter_2.pth before the validation at 2: its thresholds
    # are the warm-up ones ...
    meta = torch.load(os.path.join(runs['b'], 'iter_2.pth'),
                      weights_only=False)['meta']
    saved = meta['mmext']['PseudoThresholdHook']['state']['stages']
    assert saved['rpn']['values'] == [0.5] * 5
    # ... yet the resumed run trains iteration 3 with the thresholds the
    # validation at 2 calibrated, as the uninterrupted run did
    rec2 = _records(runs['b'])[0]
    expected = []
    for name in rec2['classes']:
        thr = calibrated_threshold(rec2['thresholds'], rec2['tp'][name],
                                   rec2['fp'][name], 0.01, 0.5)
        expected.append(0.5 if thr is None else thr)
    assert runs['seen_b'][2]['rpn'] == pytest.approx(expected)
    assert runs['seen_b'][2] == runs['seen_a'][2]
    # same seed, same data up to the checkpoint: the same first record
    assert _records(runs['b'])[0] == _records(runs['a'])[0]
