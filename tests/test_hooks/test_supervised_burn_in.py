"""SupervisedBurnInHook: the weight schedule, and real Soft Teacher training
whose unsupervised losses count nothing during the burn-in."""
import pytest

from helpers import read_scalars, tiny_semi_config
from mmext.engine import build_runner
from mmext.hooks.supervised_burn_in import (SupervisedBurnInHook,
                                            burn_in_weight)
from mmext.utils import MMExtError


def test_weight_schedule_closed_form():
    got = [burn_in_weight(i, 4, 4, 2.0) for i in range(10)]
    assert got == [0, 0, 0, 0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert [burn_in_weight(i, 2, 0, 1.0) for i in range(4)] == [0, 0, 1, 1]
    assert burn_in_weight(0, 0, 0, 3.0) == 3.0


@pytest.mark.parametrize('kwargs', [dict(burn_in_iters=-1),
                                    dict(burn_in_iters=2, ramp_iters=1.5),
                                    dict(burn_in_iters=True)])
def test_bad_arguments(kwargs):
    with pytest.raises(MMExtError, match='SupervisedBurnInHook'):
        SupervisedBurnInHook(**kwargs)


def test_unsupervised_losses_are_zero_during_burn_in(tiny_demo_root,
                                                     tmp_path):
    cfg = tiny_semi_config(tiny_demo_root, str(tmp_path / 'run'),
                           max_iters=5)
    cfg.model.semi_train_cfg.unsup_weight = 2.0
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] == 'MeanTeacherHook'] + [
        dict(type='SupervisedBurnInHook', burn_in_iters=3, ramp_iters=2)]
    runner = build_runner(cfg)
    runner.train()
    rows = [r for r in read_scalars(str(tmp_path / 'run')) if 'loss' in r]
    # 0-based iterations 0-2 burn in; the ramp starts from 0 at 3 and is
    # half way (1.0 of 2.0) at 4
    assert [r['unsup_weight'] for r in rows] == [0.0, 0.0, 0.0, 0.0, 1.0]
    unsup = [sum(v for k, v in r.items() if k.startswith('unsup_')
                 and 'loss' in k) for r in rows]
    assert unsup[:4] == [0.0] * 4
    assert unsup[4] > 0  # counted again after the burn-in
    # the configured weight is back after training
    assert runner.model.semi_train_cfg['unsup_weight'] == 2.0


def test_model_without_semi_train_cfg_disables_the_hook(tmp_path):
    import types

    import torch
    runner = types.SimpleNamespace(model=torch.nn.Linear(1, 1), iter=0,
                                   work_dir=str(tmp_path), hooks=[])
    hook = SupervisedBurnInHook(burn_in_iters=2)
    hook.before_train(runner)  # logs one warning, never raises
    assert hook.disabled and 'no semi_train_cfg' in hook.failure
    assert hook.before_train_iter(runner, 0) is None
