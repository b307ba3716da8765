"""Threshold policies and their state, against independent computations."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmext.models.pseudo_thresholds import PseudoThresholds
from mmext.models.threshold_policies import (StageThreshold, class_priors,
                                             gmm_threshold,
                                             proportion_threshold)
from mmext.utils import MMExtError

C = 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=0, max_size=40, unique=True),
       st.floats(0.0, 50.0))
def test_proportion_threshold_keeps_the_expected_count(scores, expected):
    floor, ceiling = 0.0, 1.0
    thr = proportion_threshold(np.array(scores), expected, floor, ceiling)
    k = int(round(expected))
    desc = sorted(scores, reverse=True)
    # plain sort: the (k+1)-th highest, or the floor when there are <= k
    if k < len(desc):
        assert thr == desc[k]
        assert sum(s > thr for s in scores) == k
    else:
        assert thr == floor


def test_proportion_threshold_is_clipped():
    scores = np.array([0.99, 0.98, 0.97, 0.01, 0.02])
    assert proportion_threshold(scores, 1, 0.1, 0.9) == 0.9
    assert proportion_threshold(scores, 4, 0.1, 0.9) == 0.1


def _ct_rule(scores, mode):
    """Consistent-Teacher's rule written out with scikit-learn directly."""
    from sklearn.mixture import GaussianMixture
    x = np.sort(np.asarray(scores, float)).reshape(-1, 1)
    g = GaussianMixture(2, weights_init=[0.5, 0.5],
                        means_init=[[x.min()], [x.max()]],
                        precisions_init=[[[1.0]], [[1.0]]], random_state=0)
    g.fit(x)
    a = g.predict(x)
    if not (a == 1).any():
        return None
    if mode == 'middle':
        return x[a == 1].min()
    ll = g.score_samples(x)
    ll[a == 0] = -np.inf
    best = x[np.argmax(ll), 0]
    return x[(a == 1) & (x[:, 0] >= best)].min()


@pytest.mark.parametrize('mode', ['high', 'middle'])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_gmm_threshold_equals_sklearn(mode, seed):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.beta(2, 8, 80), rng.beta(8, 2, 30)])
    expected = _ct_rule(scores, mode)
    got = gmm_threshold(np.sort(scores), mode, 0.0, 1.0, fallback=0.5)
    assert expected is not None and got == pytest.approx(expected, abs=0)
    # a bimodal sample: the threshold separates the two modes
    assert 0.2 < got < 0.9


def test_class_priors():
    p = class_priors(np.array([0, 0, 1, 2, 2, 2]), num_images=3, num_classes=4)
    assert p['class_shares'] == [2 / 6, 1 / 6, 3 / 6, 0.0]
    assert p['boxes_per_image'] == 2.0
    with pytest.raises(MMExtError, match='no boxes'):
        class_priors(np.array([], int), 3, 4)


@pytest.mark.parametrize('spec, match', [
    ([0.5, 0.5], 'needs 3 numbers'),
    ([0.5, 'a', 0.2], 'needs 3 numbers'),
    ([0.5, 1.5, 0.2], r'in \[0, 1\]'),
    (float('nan'), r'in \[0, 1\]'),
    ('0.5', 'must be a float'),
    (dict(type='otsu'), 'unknown threshold policy'),
    (dict(type='gmm', fraction=1.0), 'has no argument fraction'),
    (dict(type='gmm', mode='low'), "'high' or 'middle'"),
    (dict(type='proportion', floor=0.8, ceiling=0.2), 'above ceiling'),
    (dict(type='proportion', update_interval=0), 'update_interval'),
    (dict(type='proportion', class_shares=[0.5, 0.2, 0.1]), 'sum to 1'),
    (dict(type='proportion', boxes_per_image=-1), 'boxes_per_image'),
])
def test_stage_spec_errors_name_the_key(spec, match):
    with pytest.raises(MMExtError, match=match) as info:
        StageThreshold('cls_pseudo_thr', spec, C)
    assert 'cls_pseudo_thr' in str(info.value)


def _state(policy='proportion', **extra):
    spec = dict(type=policy, warmup_thr=0.5, min_scores=5, update_interval=2,
                window_images=6, floor=0.0, ceiling=1.0)
    spec.update(extra)
    if policy == 'proportion':
        spec.update(class_shares=[0.5, 0.25, 0.25], boxes_per_image=2.0)
    cfg = dict(pseudo_label_initial_score_thr=0.1, rpn_pseudo_thr=[0.2, 0.3,
                                                                    0.4],
               cls_pseudo_thr=spec)
    return PseudoThresholds(cfg, C)


def _images(seed, n):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(3, 9))
        out.append((rng.integers(0, C, k).tolist(), rng.random(k).tolist()))
    return out


def test_state_warmup_then_proportion_on_the_window():
    state = _state()
    assert state.values('cls').tolist() == [0.5] * C
    assert state.values('rpn').tolist() == [0.2, 0.3, 0.4]
    images = _images(0, 10)
    state.record([0, 1], [0.9, 0.8])
    assert not state.due(1) and state.due(2)
    state.update(2)
    # one image: fewer than min_scores per class -> warm-up stays
    assert state.values('cls').tolist() == [0.5] * C
    for labels, scores in images:
        state.record(labels, scores)
    state.update(4)
    window = images[-6:]  # window_images=6
    for c, share in enumerate([0.5, 0.25, 0.25]):
        scores = [s for lab, sc in window for la, s in zip(lab, sc) if la == c]
        if len(scores) < 5:
            assert state.values('cls')[c] == 0.5
            continue
        k = int(round(2.0 * share * 6))
        desc = sorted(scores, reverse=True)
        assert state.values('cls')[c] == (desc[k] if k < len(desc) else 0.0)
    assert state.values('rpn').tolist() == [0.2, 0.3, 0.4]  # fixed list


@pytest.mark.parametrize('policy', ['proportion', 'gmm'])
def test_gathered_ranks_equal_one_process(policy):
    """Two ranks' images gathered == one process that saw them all."""
    images = _images(1, 12)
    ranks = [_state(policy, window_images=64) for _ in range(2)]
    for r, state in enumerate(ranks):
        for labels, scores in images[r::2]:
            state.record(labels, scores)
    pendings = [s.pending for s in ranks]
    for state in ranks:
        state.update(2, gather=lambda mine, p=pendings: p)
    single = _state(policy, window_images=64)
    for labels, scores in images:
        single.record(labels, scores)
    single.update(2)
    assert ranks[0].in_force() == ranks[1].in_force() == single.in_force()
    assert ranks[0].stages['cls'].adapted.any()


def test_state_dict_round_trip_and_mismatch():
    state = _state()
    for labels, scores in _images(2, 8):
        state.record(labels, scores)
    state.update(2)
    saved = state.state_dict()
    fresh = _state()
    assert fresh.load_state_dict(saved)
    assert fresh.in_force() == state.in_force()
    assert list(fresh.window) == list(state.window)
    other = _state('gmm')
    assert not other.load_state_dict(saved)  # another policy: not restored
    assert other.values('cls').tolist() == [0.5] * C


def test_fall_back_restores_configured_values():
    state = _state()
    for labels, scores in _images(3, 8):
        state.record(labels, scores)
    state.update(2)
    state.fall_back('test')
    assert state.values('cls').tolist() == [0.5] * C
    assert not state.due(4)


def test_fixed_policy_and_warmup_iters():
    cfg = dict(cls_pseudo_thr=dict(type='fixed', values=[0.2, 0.3, 0.4],
                                   warmup_thr=0.5, warmup_iters=20,
                                   update_interval=5))
    state = PseudoThresholds(cfg, C)
    assert not state.needs_scores
    state.record([0], [0.9])
    assert state.pending == []  # nothing recorded: no rule reads scores
    state.update(15)
    assert state.values('cls').tolist() == [0.5] * C
    state.update(20)
    assert state.values('cls').tolist() == [0.2, 0.3, 0.4]
    with pytest.raises(MMExtError, match='needs values'):
        StageThreshold('cls_pseudo_thr', dict(type='fixed'), C)
    with pytest.raises(MMExtError, match='warmup_iters'):
        StageThreshold('cls_pseudo_thr', dict(type='gmm', warmup_iters=-1), C)
    # a score policy waits for warmup_iters too
    state = _state(warmup_iters=8, min_scores=1)
    for labels, scores in _images(4, 6):
        state.record(labels, scores)
    state.update(4)
    assert state.values('cls').tolist() == [0.5] * C
    state.update(8)
    assert state.stages['cls'].adapted.any()
