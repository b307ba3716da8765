"""LossStabilityHook's level/noise measure: quiet on healthy streams, loud on
injected instabilities, checked against independent numpy computations."""
import json
import math
import types

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

import mmext.hooks.loss_stability as ls
from mmext.hooks import LossStabilityHook


def _runner(tmp_path):
    return types.SimpleNamespace(
        iter=0, work_dir=str(tmp_path), hooks=[],
        message_hub=MessageHub(f'stab_{id(tmp_path)}_{np.random.rand()}'),
        train_loop=types.SimpleNamespace(stop_training=False),
        model=torch.nn.Linear(2, 2))


@pytest.fixture
def warnings_of(monkeypatch):
    seen = []
    monkeypatch.setattr(ls, 'print_log',
                        lambda msg, logger=None, level=None: seen.append(msg))
    return seen


def _feed(hook, runner, losses):
    for value in losses:
        hook.after_train_iter(runner, 0, outputs=dict(loss=float(value)))
        runner.iter += 1


def healthy_stream(n, seed, cv=0.6):
    """A falling loss (4 -> 1, then flat) with lognormal per-iteration noise
    of coefficient of variation ``cv``: what 3-image batches look like."""
    rng = np.random.default_rng(seed)
    it = np.arange(n)
    level = 1.0 + 3.0 * np.exp(-it / 60.0)
    sigma = math.sqrt(math.log(1 + cv ** 2))
    return level * rng.lognormal(-sigma ** 2 / 2, sigma, n)


def test_window_stability_against_numpy():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, 20000)
    trend = np.linspace(10, 5, noise.size)
    stats = ls.window_stability(trend + noise)
    assert stats['level'] == pytest.approx(np.median(trend + noise))
    # differences remove the trend: the noise estimate is the noise's std
    assert stats['noise'] == pytest.approx(1.0, rel=0.03)
    assert np.std(trend + noise) > 1.5  # a plain std counts the trend
    assert stats['rel_noise'] == pytest.approx(stats['noise'] / stats['level'])
    assert stats['level_se'] == pytest.approx(
        1.2533 * stats['noise'] / math.sqrt(noise.size))


def test_level_se_is_the_spread_of_window_medians():
    rng = np.random.default_rng(1)
    windows = rng.normal(3.0, 0.5, (4000, 100))
    medians = np.median(windows, axis=1)
    se = np.mean([ls.window_stability(w)['level_se'] for w in windows[:200]])
    assert se == pytest.approx(medians.std(), rel=0.1)


def test_stability_alarms_need_size_and_significance():
    ref = dict(level=1.0, noise=0.5, rel_noise=0.5, level_se=0.06)
    big_noisy = dict(level=1.6, noise=0.8, rel_noise=0.5, level_se=0.9)
    assert not ls.stability_alarms(big_noisy, ref, 0.5, 4.0, 2.0)['level_alarm']
    big_sure = dict(big_noisy, level_se=0.06)
    out = ls.stability_alarms(big_sure, ref, 0.5, 4.0, 2.0)
    assert out['level_alarm'] and out['rise'] == pytest.approx(0.6)
    assert out['z'] == pytest.approx(0.6 / math.hypot(0.06, 0.06))
    small_sure = dict(big_sure, level=1.3)
    assert not ls.stability_alarms(small_sure, ref, 0.5, 4.0, 2.0)['level_alarm']
    jumpy = dict(level=1.0, noise=1.5, rel_noise=1.5, level_se=0.19)
    out = ls.stability_alarms(jumpy, ref, 0.5, 4.0, 2.0)
    assert out['noise_alarm'] and out['noise_ratio'] == pytest.approx(3.0)
    zero = dict(ref, level=0.0, rel_noise=float('nan'))
    assert ls.stability_alarms(ref, zero, 0.5, 4.0, 2.0)['level_alarm'] == 0


@pytest.mark.parametrize('seed', range(5))
def test_healthy_run_is_quiet_where_raw_cv_cries_wolf(tmp_path, warnings_of,
                                                      seed):
    losses = healthy_stream(800, seed)
    _feed(LossStabilityHook(window=100), _runner(tmp_path), losses)
    assert warnings_of == []
    # the first version's rule on the same stream: a warning every window
    _feed(LossStabilityHook(window=100, cv_thr=0.03), _runner(tmp_path),
          losses)
    assert len(warnings_of) == 8


def test_level_jump_warns_within_a_window_and_once(tmp_path, warnings_of):
    losses = healthy_stream(1000, 7)
    losses[450:] *= 2.0  # e.g. an LR spike knocked the weights off
    runner = _runner(tmp_path)
    _feed(LossStabilityHook(window=100), runner, losses)
    level = [w for w in warnings_of if 'rose to a median' in w]
    assert len(level) == 1 and 'iter 600:' in level[0]  # first full window
    record = [json.loads(x) for x in open(tmp_path / 'loss_stability.jsonl')]
    assert [r['iter'] for r in record] == list(range(100, 1001, 100))
    at600 = next(r for r in record if r['iter'] == 600)['losses']['loss']
    assert at600['level_alarm'] == 1 and at600['rise'] > 0.5
    expected = np.median(losses[500:600])
    assert at600['level'] == pytest.approx(expected)


def test_recovered_loss_rearms_the_alarm(tmp_path, warnings_of):
    losses = healthy_stream(1200, 8)
    losses[400:500] *= 2.5
    losses[800:900] *= 2.5
    _feed(LossStabilityHook(window=100), _runner(tmp_path), losses)
    level = [w for w in warnings_of if 'rose to a median' in w]
    assert [w.split(':')[1] for w in level] == [' iter 500', ' iter 900']


def test_noise_growth_warns(tmp_path, warnings_of):
    rng = np.random.default_rng(3)
    losses = 1.0 + 0.1 * rng.normal(size=800)
    losses[500:] = 1.0 + 0.4 * rng.normal(size=300)
    _feed(LossStabilityHook(window=100), _runner(tmp_path), losses)
    noisy = [w for w in warnings_of if 'noise is' in w]
    assert len(noisy) == 1 and 'iter 600:' in noisy[0]
    assert not any('rose to a median' in w for w in warnings_of)


def test_no_warning_during_warmup(tmp_path, warnings_of):
    losses = np.concatenate([np.full(100, 1.0), np.full(100, 5.0),
                             np.full(100, 5.0)])
    losses += np.random.default_rng(0).normal(0, 0.01, losses.size)
    _feed(LossStabilityHook(window=100, warmup_iters=300), _runner(tmp_path),
          losses)
    assert warnings_of == []


def test_reference_and_alarms_survive_checkpoint(tmp_path, warnings_of):
    losses = healthy_stream(1000, 7)
    losses[450:] *= 2.0
    hook, runner = LossStabilityHook(window=100), _runner(tmp_path)
    _feed(hook, runner, losses[:650])
    resumed = LossStabilityHook(window=100)
    resumed.load_state_dict(hook.state_dict(), runner)
    assert resumed.reference == hook.reference
    assert resumed.alarms == {'loss': ['level_alarm']}
    _feed(resumed, runner, losses[650:])
    # the lasting rise was already reported before the checkpoint: once
    assert sum('rose to a median' in w for w in warnings_of) == 1


def test_run_report_shows_the_windows_the_hook_wrote(tmp_path, warnings_of):
    from mmext.investigation.run_report import load_run, loss_window_rows
    losses = healthy_stream(1000, 7)
    losses[450:] *= 2.0
    _feed(LossStabilityHook(window=100), _runner(tmp_path), losses)
    rows = loss_window_rows(load_run(str(tmp_path)))
    assert [r['iter'] for r in rows] == list(range(100, 1001, 100))
    states = {r['iter']: r['state'] for r in rows}
    assert states[100] == states[200] == 'warm-up'
    assert states[600] == 'level'
    assert rows[5]['median'] == pytest.approx(np.median(losses[500:600]))
