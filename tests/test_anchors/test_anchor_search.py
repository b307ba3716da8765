"""Ratio search: seeds, objectives, and agreement with the exact coverage."""
import numpy as np

from mmext.anchors import AnchorSpec, anchor_coverage, search_anchor_shapes
from mmext.anchors.search import kmeans_seed, quantile_seed
from mmext.anchors.summary import aggregate, class_scores
from mmext.anchors.train_scale import ScaledBoxes


def cluster_boxes(seed, ratios, counts, img=256):
    """Boxes of area ~ (8 * stride 8)^2 whose h/w clusters at ``ratios``."""
    rng = np.random.default_rng(seed)
    parts, labels = [], []
    for label, (r, n) in enumerate(zip(ratios, counts)):
        ratio = r * np.exp(rng.normal(0, 0.08, n))
        area = (64 * np.exp(rng.uniform(-0.3, 0.3, n))) ** 2
        w, h = np.sqrt(area / ratio), np.sqrt(area * ratio)
        cx = rng.uniform(w / 2, img - w / 2)
        cy = rng.uniform(h / 2, img - h / 2)
        parts.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1))
        labels += [label] * n
    b = np.clip(np.concatenate(parts), 0, img)
    n = len(b)
    full = np.full(n, img)
    return ScaledBoxes(b, full, full, full, full, np.arange(n)), np.array(labels)


def exact_objective(boxes, labels, spec, objective):
    cov = anchor_coverage(boxes, spec, with_assigned=False)
    k = labels.max() + 1
    return float(aggregate(class_scores(cov.max_iou, labels, k, spec.pos_iou_thr),
                           np.bincount(labels, minlength=k), objective))


def test_search_finds_the_clusters_and_matches_exact_coverage():
    boxes, labels = cluster_boxes(0, [0.22, 1.0, 4.5], [120, 120, 120])
    spec = AnchorSpec()
    res = search_anchor_shapes([boxes], labels, 3, spec, num_ratios=3)
    found = np.array(res.ratios)
    assert np.all(np.abs(np.log(found / [0.22, 1.0, 4.5])) < np.log(1.35)), found
    new = spec.replace(ratios=res.ratios)
    # The cached candidate tables give exactly the objective of a full pass.
    assert np.isclose(res.objective, exact_objective(boxes, labels, new, 'box'), atol=1e-12)
    assert np.isclose(res.current_objective, exact_objective(boxes, labels, spec, 'box'),
                      atol=1e-12)
    assert res.objective > res.current_objective + 0.2
    assert res.rounds == sorted(res.rounds)


def test_worst_class_objective_serves_the_rare_class():
    boxes, labels = cluster_boxes(1, [1.0, 0.6, 0.12], [300, 200, 15])
    spec = AnchorSpec()
    by_box = spec.replace(ratios=search_anchor_shapes([boxes], labels, 3, spec, 2, 'box').ratios)
    worst = spec.replace(ratios=search_anchor_shapes([boxes], labels, 3, spec, 2, 'worst').ratios)
    assert min(worst.ratios) < 0.3  # an anchor for the rare 1:8 class
    assert (exact_objective(boxes, labels, worst, 'worst')
            > exact_objective(boxes, labels, by_box, 'worst') + 0.1)
    assert (exact_objective(boxes, labels, by_box, 'box')
            >= exact_objective(boxes, labels, worst, 'box'))


def test_search_scales_keeps_their_number():
    boxes, labels = cluster_boxes(2, [1.0, 0.5], [100, 100])
    spec = AnchorSpec(scales=(2.0, ))  # far too small anchors
    res = search_anchor_shapes([boxes], labels, 2, spec, 2, search_scales=True)
    assert len(res.scales) == 1 and res.scales[0] > 2.0
    assert res.objective > res.current_objective


def test_seeds():
    rng = np.random.default_rng(0)
    log_r = rng.normal(0, 1, 1001)
    q = quantile_seed(log_r, 4)
    np.testing.assert_allclose(np.log(q), np.quantile(log_r, (np.arange(4) + 0.5) / 4,
                                                      method='hazen'), atol=1e-9)
    centres = [-2.0, 0.0, 2.0]
    x = np.concatenate([c + rng.normal(0, 0.1, 200) for c in centres])
    km = kmeans_seed(x, 3)
    np.testing.assert_allclose(np.log(km), [x[:200].mean(), x[200:400].mean(), x[400:].mean()],
                               atol=1e-9)


def test_subsample_keeps_rare_classes_for_class_objectives():
    from mmext.anchors.search import _subsample
    labels = np.array([0] * 5000 + [1] * 20 + [2] * 700)
    strat = _subsample(labels, 600, seed=0, stratified=True)
    assert np.bincount(labels[strat]).tolist() == [200, 20, 200]
    uniform = _subsample(labels, 600, seed=0, stratified=False)
    assert len(uniform) == 600 and len(np.unique(uniform)) == 600
