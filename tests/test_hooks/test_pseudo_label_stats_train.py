"""PseudoLabelStatsHook inside real Soft Teacher training (tiny images).

A test-side observer patches mmdet's classes to record, per iteration, the
teacher's raw detections and what ``get_pseudo_instances`` returned. The
expected counts, stage filters, box mapping (numpy, not mmdet's
bbox_project) and GT matching (pycocotools IoU) are computed here from those
outputs and the thresholds, and compared with the hook's JSON records.

Run A: 3 iterations, a record every 2 (iterations 1-2, then 3), a
checkpoint every iteration. Run B resumes A's iteration-1 checkpoint: its
first record must hold A's iteration 1 (restored from the checkpoint) plus
its own iteration 2; at iteration 3 an injected failure disables the hook
with one warning and training goes on.
"""
import glob
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from mmdet.models.detectors import SoftTeacher
from mmdet.models.roi_heads import StandardRoIHead
from test_pseudo_label_stats_unit import greedy_tp_fp

from helpers import tiny_semi_config
from mmext.data import load_coco
from mmext.engine import build_runner
from mmext.hooks import pseudo_label_stats
from mmext.hooks.pseudo_label_tally import ImageGT

THR = dict(pseudo_label_initial_score_thr=0.19, rpn_pseudo_thr=0.2,
           cls_pseudo_thr=0.21, reg_pseudo_thr=0.05)
STAGES = ('raw', 'initial', 'rpn', 'cls', 'reg')
GT_FILE = 'annotations/train_unlabeled_gt.json'


class Observer:
    """Records the teacher's outputs of every get_pseudo_instances call."""

    def __init__(self):
        self.batches = []
        self._raw = None
        self._inside = False

    def install(self, mp):
        gpi, predict, obs = (SoftTeacher.get_pseudo_instances,
                             StandardRoIHead.predict, self)

        def get_pseudo_instances(model, inputs, samples):
            obs._raw, obs._inside = None, True
            try:
                out = gpi(model, inputs, samples)
            finally:
                obs._inside = False
            obs.batches.append([
                obs.image(s, r) for s, r in zip(out[0], obs._raw)])
            return out

        def roi_predict(head, *args, **kwargs):
            res = predict(head, *args, **kwargs)
            if obs._inside and obs._raw is None:  # the first call is raw
                obs._raw = [(r.bboxes.numpy().copy(), r.scores.numpy().copy(),
                             r.labels.numpy().copy()) for r in res]
            return res

        mp.setattr(SoftTeacher, 'get_pseudo_instances', get_pseudo_instances)
        mp.setattr(StandardRoIHead, 'predict', roi_predict)

    @staticmethod
    def image(sample, raw):
        inst = sample.gt_instances
        return dict(
            raw=raw, H=np.asarray(sample.homography_matrix, np.float64),
            ori_shape=sample.ori_shape, name=osp.basename(sample.img_path),
            bboxes=inst.bboxes.numpy().copy(), scores=inst.scores.numpy(),
            labels=inst.labels.numpy(), uncs=inst.reg_uncs.numpy())


def project_back(bboxes, H, ori_shape):
    """Teacher-view boxes -> original pixels: inverse homography of the 4
    corners, their bounding box, clipped to the image."""
    inv = np.linalg.inv(H)
    x1, y1, x2, y2 = bboxes.T
    xs = np.stack([x1, x2, x2, x1], 1)
    ys = np.stack([y1, y1, y2, y2], 1)
    pts = np.stack([xs, ys, np.ones_like(xs)], -1) @ inv.T
    px, py = pts[..., 0] / pts[..., 2], pts[..., 1] / pts[..., 2]
    h, w = ori_shape
    return np.stack([px.min(1).clip(0, w), py.min(1).clip(0, h),
                     px.max(1).clip(0, w), py.max(1).clip(0, h)], 1)


def expected(batches, gt_by_name, num_classes):
    """Counts, images without boxes and TP/FP per stage from observations."""
    S = len(STAGES)
    out = dict(counts=np.zeros((S, num_classes)), tp=np.zeros(
        (S, num_classes)), fp=np.zeros((S, num_classes)),
               without=np.zeros(S), num_gt=np.zeros(num_classes), images=0)
    for batch in batches:
        for im in batch:
            rb, rs, rl = im['raw']
            raw_b = project_back(rb, im['H'], im['ori_shape'])
            # SoftTeacher's initial filter, checked independently.
            assert len(im['scores']) == int(
                (rs > THR['pseudo_label_initial_score_thr']).sum())
            s, b, lab = im['scores'], im['bboxes'], im['labels']
            sets = {
                'raw': (raw_b, rs, rl), 'initial': (b, s, lab),
                'rpn': tuple(a[s > THR['rpn_pseudo_thr']] for a in (b, s, lab)),
                'cls': tuple(a[s > THR['cls_pseudo_thr']] for a in (b, s, lab)),
                'reg': tuple(a[im['uncs'] < THR['reg_pseudo_thr']]
                             for a in (b, s, lab)),
            }
            gt = gt_by_name[im['name']]
            out['images'] += 1
            out['num_gt'] += np.bincount(gt.labels[~gt.ignore],
                                         minlength=num_classes)
            for k, stage in enumerate(STAGES):
                bb, ss, ll = sets[stage]
                out['counts'][k] += np.bincount(ll, minlength=num_classes)
                out['without'][k] += len(ll) == 0
                tp, fp = greedy_tp_fp(bb, ss, ll, gt, num_classes=num_classes)
                out['tp'][k] += np.bincount(ll[tp], minlength=num_classes)
                out['fp'][k] += np.bincount(ll[fp], minlength=num_classes)
    return out


def check_record(rec, exp, names):
    assert rec['num_images'] == exp['images']
    for k, stage in enumerate(STAGES):
        assert [rec['counts'][stage][n] for n in names] == \
            exp['counts'][k].tolist(), stage
        assert [rec['tp'][stage][n] for n in names] == exp['tp'][k].tolist()
        assert [rec['fp'][stage][n] for n in names] == exp['fp'][k].tolist()
        assert rec['images_without'][stage] == exp['without'][k]
        raw = exp['counts'][0]
        for c, n in enumerate(names):
            want = exp['counts'][k][c] / raw[c] if raw[c] else None
            assert rec['kept_ratio'][stage][n] == pytest.approx(want)
    assert [rec['num_gt'][n] for n in names] == exp['num_gt'].tolist()


def semi_cfg(root, work_dir, max_iters):
    cfg = tiny_semi_config(root, work_dir, max_iters=max_iters)
    cfg.model.semi_train_cfg.update(THR)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'INFO'  # the log line goes to the log file
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] != 'PseudoLabelStatsHook']
    cfg.custom_hooks.append(dict(type='PseudoLabelStatsHook', interval=2,
                                 gt_ann_file=GT_FILE))
    return cfg


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def run_a(tiny_demo_root, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('pseudo_a'))
    obs = Observer()
    with pytest.MonkeyPatch.context() as mp:
        obs.install(mp)
        runner = build_runner(semi_cfg(tiny_demo_root, work, 3))
        runner.train()
    table = load_coco(osp.join(tiny_demo_root, GT_FILE))
    boxes = table.bboxes()
    gt = {osp.basename(f): ImageGT(boxes[table.image_id == i],
                                   table.label[table.image_id == i],
                                   table.ignore[table.image_id == i])
          for i, f in zip(table.image_ids, table.file_names)}
    return dict(work=work, obs=obs, runner=runner, gt=gt,
                names=list(table.class_names), root=tiny_demo_root)


def test_counts_equal_independent_counts(run_a):
    recs = read_jsonl(osp.join(run_a['work'], 'pseudo_label_stats.jsonl'))
    assert [(r['first_iter'], r['iter']) for r in recs] == [(1, 2), (3, 3)]
    batches = run_a['obs'].batches
    assert len(batches) == 3
    names = run_a['names']
    for rec, its in zip(recs, (batches[:2], batches[2:])):
        exp = expected(its, run_a['gt'], len(names))
        check_record(rec, exp, names)
    # The lowered thresholds really filter (else the test proves little).
    totals = [recs[0]['counts_total'][s] for s in STAGES]
    assert len(set(totals)) >= 3, totals
    assert recs[0]['thresholds']['cls'] == THR['cls_pseudo_thr']


def test_numbers_reach_log_line_and_scalars(run_a):
    runner = run_a['runner']
    rec = read_jsonl(osp.join(run_a['work'], 'pseudo_label_stats.jsonl'))[0]
    with open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]) as f:
        log = f.read()
    # the text line keeps one summary (ConciseLogProcessor); every figure
    # reaches the visualizer
    assert 'pseudo/precision_cls: ' in log and 'pseudo/per_img_raw: ' not in log
    assert 'mmext figures in the visualizer' in log
    assert 'Pseudo-label score threshold per class' in log
    scalars = read_jsonl(osp.join(runner.log_dir, 'vis_data',
                                  'scalars.json'))
    at2 = next(s for s in scalars if s['step'] == 2)
    assert 'pseudo/per_img_raw' in at2
    assert at2['pseudo/kept_ratio_cls'] == pytest.approx(
        rec['kept_ratio_total']['cls'], abs=1e-4)
    name = next(n for n, v in rec['kept_ratio']['cls'].items()
                if v is not None)
    assert at2[f'pseudo/kept_ratio_cls/{name}'] == pytest.approx(
        rec['kept_ratio']['cls'][name], abs=1e-4)
    # The model got its own methods back after training.
    assert 'get_pseudo_instances' not in vars(runner.model)


def test_resume_restores_interval_and_failure_disables(run_a, tmp_path,
                                                       monkeypatch):
    work = str(tmp_path)
    shutil.copy(osp.join(run_a['work'], 'iter_1.pth'), work)
    shutil.copy(osp.join(run_a['work'], 'pseudo_label_stats.jsonl'), work)
    cfg = semi_cfg(run_a['root'], work, 3)
    cfg.resume, cfg.load_from = True, osp.join(work, 'iter_1.pth')
    obs = Observer()
    obs.install(monkeypatch)
    calls = []
    tally_image = pseudo_label_stats.tally_image

    def failing_at_iteration_3(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:  # 2 unlabeled images per iteration
            raise RuntimeError('injected failure')
        return tally_image(*args, **kwargs)

    monkeypatch.setattr(pseudo_label_stats, 'tally_image',
                        failing_at_iteration_3)
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 3  # training went on
    recs = read_jsonl(osp.join(work, 'pseudo_label_stats.jsonl'))
    # A's records after iteration 1 were dropped; B wrote iteration 2 only.
    assert [(r['first_iter'], r['iter']) for r in recs] == [(1, 2)]
    exp = expected(run_a['obs'].batches[:1] + obs.batches[:1], run_a['gt'],
                   len(run_a['names']))
    check_record(recs[0], exp, run_a['names'])
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'PseudoLabelStatsHook')
    assert hook.disabled and 'injected failure' in hook.failure
    assert 'get_pseudo_instances' not in vars(runner.model)
    with open(glob.glob(osp.join(runner.log_dir, '*.log'))[0]) as f:
        warnings = [ln for ln in f if 'PseudoLabelStatsHook disabled' in ln]
    assert len(warnings) == 1
    assert os.path.isfile(osp.join(work, 'iter_3.pth'))
