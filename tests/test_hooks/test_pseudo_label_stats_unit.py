"""PseudoLabelStatsHook building blocks against independent computations.

Matching is checked against a brute-force VOC greedy matcher built on
pycocotools' IoU, quantiles against numpy, thresholds against a direct scan
of the scores. No training here (see test_pseudo_label_stats_train.py).
"""
import json
import types

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from mmext.hooks.pseudo_label_record import hist_quantile, tally_record
from mmext.runs.pseudo_records import (read_records, recommend_thresholds,
                                       window_arrays)
from mmext.hooks.pseudo_label_stats import PseudoLabelStatsHook, hub_scalars
from mmext.hooks.pseudo_label_tally import (ALL_STAGES, ImageGT,
                                            PseudoLabelTally,
                                            stage_boxes_of_image, tally_image)
from mmext.utils import MMExtError

C = 3
NAMES = ['a', 'b', 'c']


def xywh(b):
    b = np.asarray(b, np.float64).reshape(-1, 4)
    return np.c_[b[:, :2], b[:, 2:] - b[:, :2]]


def greedy_tp_fp(bboxes, scores, labels, gt, iou_thr=0.5, num_classes=C):
    """VOC greedy: by score, each box takes its best-IoU GT of its class;
    taken -> FP, ignored GT -> neither (independent of mmdet)."""
    tp = np.zeros(len(scores), bool)
    fp = np.zeros(len(scores), bool)
    for c in range(num_classes):
        d = np.flatnonzero(labels == c)
        g = np.flatnonzero(gt.labels == c)
        if len(d) == 0:
            continue
        if len(g) == 0:
            fp[d] = True
            continue
        iou = np.asarray(mask_utils.iou(xywh(bboxes[d]), xywh(gt.bboxes[g]),
                                        [0] * len(g)))
        taken = set()
        for i in sorted(range(len(d)), key=lambda i: -scores[d[i]]):
            j = int(iou[i].argmax())
            if iou[i, j] < iou_thr:
                fp[d[i]] = True
            elif gt.ignore[g[j]]:
                continue
            elif j in taken:
                fp[d[i]] = True
            else:
                taken.add(j)
                tp[d[i]] = True
    return tp, fp


def random_image(rng, n_gt=6, n_det=15):
    xy = rng.uniform(0, 80, (n_gt, 2))
    gt_boxes = np.c_[xy, xy + rng.uniform(8, 30, (n_gt, 2))]
    gt = ImageGT(gt_boxes, rng.integers(0, C, n_gt), rng.random(n_gt) < 0.15)
    # Half the detections are jittered GT boxes (some TP), half random.
    src = rng.integers(0, n_gt, n_det)
    det = gt_boxes[src] + rng.normal(0, 3, (n_det, 4))
    det[::2] = np.c_[xy[src[::2]], xy[src[::2]] + 20] + rng.uniform(
        -20, 20, (len(det[::2]), 1))
    det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
    labels = np.where(rng.random(n_det) < 0.8, gt.labels[src],
                      rng.integers(0, C, n_det))
    return det, rng.random(n_det), labels, gt


def test_tally_image_matches_independent_counts():
    rng = np.random.default_rng(0)
    tally = PseudoLabelTally(ALL_STAGES, C, num_bins=20)
    expect_tp = np.zeros((len(ALL_STAGES), C))
    expect_fp = np.zeros((len(ALL_STAGES), C))
    expect_counts = np.zeros((len(ALL_STAGES), C))
    all_scores, num_gt, without = [], np.zeros(C), np.zeros(len(ALL_STAGES))
    thr = {'rpn': 0.3, 'cls': 0.5, 'reg': 0.4}
    for _ in range(12):
        det, scores, labels, gt = random_image(rng)
        uncs = rng.random(len(scores))
        keep = scores > 0.2  # what get_pseudo_instances returned
        kept = (det[keep], scores[keep], labels[keep])
        boxes = stage_boxes_of_image((det, scores, labels), kept, uncs[keep],
                                     ALL_STAGES, thr)
        tally_image(tally, boxes, gt)
        masks = {'raw': np.ones(len(scores), bool), 'initial': keep,
                 'rpn': keep & (scores > 0.3), 'cls': keep & (scores > 0.5),
                 'reg': keep & (uncs < 0.4)}
        for s, stage in enumerate(ALL_STAGES):
            m = masks[stage]
            tp, fp = greedy_tp_fp(det[m], scores[m], labels[m], gt)
            expect_tp[s] += np.bincount(labels[m][tp], minlength=C)
            expect_fp[s] += np.bincount(labels[m][fp], minlength=C)
            expect_counts[s] += np.bincount(labels[m], minlength=C)
            without[s] += not m.any()
        all_scores.append((scores, labels))
        num_gt += np.bincount(gt.labels[~gt.ignore], minlength=C)
    assert expect_tp.sum() > 10 and expect_fp.sum() > 10  # a real test
    np.testing.assert_array_equal(tally['tp'], expect_tp)
    np.testing.assert_array_equal(tally['fp'], expect_fp)
    np.testing.assert_array_equal(tally['counts'], expect_counts)
    np.testing.assert_array_equal(tally['num_gt'], num_gt)
    np.testing.assert_array_equal(tally['images_without'], without)
    assert tally['num_images'] == 12 and tally['gt_images'] == 12
    scores = np.concatenate([s for s, _ in all_scores])
    labels = np.concatenate([lb for _, lb in all_scores])
    for c in range(C):
        np.testing.assert_array_equal(
            tally['hist'][0, c],
            np.histogram(scores[labels == c], bins=20, range=(0, 1))[0])
        assert tally['score_sum'][0, c] == pytest.approx(
            scores[labels == c].sum())


def test_image_without_pseudo_boxes():
    """Soft Teacher gives (0, 4) reg_uncs when no box passed the first
    threshold; every stage after raw is then empty."""
    det = np.array([[0, 0, 10, 10.]])
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    boxes = stage_boxes_of_image((det, np.array([.1]), np.array([1])), empty,
                                 np.zeros((0, 4)), ALL_STAGES,
                                 {'rpn': .3, 'cls': .3, 'reg': .1})
    tally = PseudoLabelTally(ALL_STAGES, C, 10)
    tally_image(tally, boxes, None)
    assert tally['counts'].sum(1).tolist() == [1, 0, 0, 0, 0]
    assert tally['images_without'].tolist() == [0, 1, 1, 1, 1]


def test_vector_round_trip_and_sum():
    rng = np.random.default_rng(1)
    a = PseudoLabelTally(ALL_STAGES, C, 10)
    b = a.empty_like()
    for t in (a, b):
        det, scores, labels, gt = random_image(rng)
        tally_image(t, {s: (det, scores, labels) for s in ALL_STAGES}, gt)
    total = a.to_vector() + b.to_vector()  # what all_reduce(sum) does
    merged = a.empty_like()
    merged.load_vector(total)
    a.add(b)
    for name, arr in a.arrays.items():
        np.testing.assert_array_equal(merged[name], arr, err_msg=name)
    with pytest.raises(ValueError):
        merged.load_vector(total[:-1])


def test_hist_quantile_within_one_bin():
    rng = np.random.default_rng(2)
    scores = rng.beta(2, 5, 5000)
    hist = np.histogram(scores, bins=100, range=(0, 1))[0]
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(hist_quantile(hist, q) - np.quantile(scores, q)) <= 0.01
    assert hist_quantile(np.zeros(10), 0.5) is None


def test_recommend_thresholds_against_scan():
    rng = np.random.default_rng(3)
    B = 50
    scores = rng.random(400)
    labels = rng.integers(0, 2, 400)
    # A box is true more often the higher its score.
    true = rng.random(400) < scores
    hist = np.stack([np.histogram(scores[labels == c], B, (0, 1))[0]
                     for c in range(2)])
    tp_hist = np.stack([np.histogram(scores[(labels == c) & true], B,
                                     (0, 1))[0] for c in range(2)])
    fp_hist = hist - tp_hist
    num_gt = np.array([300, 300])
    rows = recommend_thresholds(hist, tp_hist, fp_hist, num_gt, ['x', 'y'],
                                target_precision=0.8, target_kept_ratio=0.25)
    for c, row in enumerate(rows):
        s, t = scores[labels == c], true[labels == c]
        edges = np.arange(B) / B
        prec = [t[s >= e].mean() if (s >= e).any() else 0 for e in edges]
        best = min(e for e, p in zip(edges, prec) if p >= 0.8)
        assert row['thr_for_precision'] == pytest.approx(best)
        assert row['precision'] == pytest.approx(t[s >= best].mean())
        assert row['recall'] == pytest.approx(t[s >= best].sum() / 300)
        kept = [(s >= e).mean() for e in edges]
        assert row['thr_for_kept_ratio'] == pytest.approx(
            max(e for e, k in zip(edges, kept) if k >= 0.25))
    no_gt = recommend_thresholds(hist, None, None, None, ['x', 'y'])
    assert no_gt[0]['thr_for_precision'] is None
    assert no_gt[0]['thr_for_kept_ratio'] is not None


def _record(tally, it):
    thr = {'initial': 0.2, 'rpn': 0.3, 'cls': 0.5, 'reg': 0.4}
    return tally_record(tally, NAMES, thr, it, it - 1)


def test_record_keys_hub_and_reader(tmp_path):
    rng = np.random.default_rng(4)
    tally = PseudoLabelTally(ALL_STAGES, C, 20)
    det, scores, labels, gt = random_image(rng)
    tally_image(tally, {s: (det, scores, labels) for s in ALL_STAGES}, gt)
    tally_image(tally, {s: (det[:0], scores[:0], labels[:0])
                        for s in ALL_STAGES}, None)
    rec = _record(tally, 2)
    assert rec['iter'] == 2 and rec['num_images'] == 2
    assert rec['images_without']['cls'] == 1
    assert rec['counts']['raw'] == {
        n: int((labels == c).sum()) for c, n in enumerate(NAMES)}
    name = NAMES[labels[0]]
    assert rec['kept_ratio']['cls'][name] == pytest.approx(1.0)
    hub = hub_scalars(rec)
    assert hub[f'kept_ratio_cls/{name}'] == pytest.approx(1.0)
    assert f'precision_cls/{name}' in hub and 'per_img_raw' in hub
    assert all(v is not None for v in hub.values())
    path = tmp_path / 'pseudo_label_stats.jsonl'
    path.write_text(json.dumps(rec) + '\n' + json.dumps(_record(tally, 4)))
    records = read_records(str(path))
    assert [r['iter'] for r in records] == [2, 4]
    arrays = window_arrays(records)
    np.testing.assert_array_equal(arrays['hist'], 2 * tally['hist'][0])
    np.testing.assert_array_equal(arrays['tp_hist'], 2 * tally['raw_tp_hist'])


@pytest.mark.parametrize('text,problem', [
    ('{"iter": 1}\n', 'missing'),
    ('not json\n', 'not JSON'),
    ('', 'no records'),
])
def test_read_records_bad_input(tmp_path, text, problem):
    path = tmp_path / 'p.jsonl'
    path.write_text(text)
    with pytest.raises(MMExtError, match=problem) as exc:
        read_records(str(path))
    assert str(path) in str(exc.value)


def test_hook_on_a_non_semi_model_warns_and_disables(caplog):
    hook = PseudoLabelStatsHook(interval=1)
    runner = types.SimpleNamespace(model=torch.nn.Linear(2, 2), iter=0)
    hook.before_train(runner)
    assert hook.disabled
    assert 'needs a SemiBaseDetector' in hook.failure
    with pytest.raises(ValueError):
        PseudoLabelStatsHook(interval=0)
