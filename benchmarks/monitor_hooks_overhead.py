#!/usr/bin/env python
"""Overhead of mmext's training monitors on Soft Teacher training (CPU).

One process trains the tiny demo Soft Teacher twice on the same generated
data with the same seed: without the monitors (baseline) and with
LossStabilityHook, ClassAPTrackerHook and AnchorMatchStatsHook. It prints

- the wall-time ratio with/without (on a shared machine this is noisy: the
  two runs see different load), and
- the time spent inside the monitors' own code (every lifecycle method and
  the per-image counting inside the wrapped assigners, measured with
  perf_counter in the monitored run) divided by the baseline run's time:
  the overhead, independent of machine load. Requirement: <= 3%.

Example:
    python benchmarks/monitor_hooks_overhead.py --iters 30
"""
import argparse
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from mmext.data.demo_dataset import make_demo_dataset
from mmext.engine import build_runner
from mmext.engine.tiny_config import tiny_semi_config
from mmext.hooks import (AnchorMatchStatsHook, ClassAPTrackerHook,
                         LossStabilityHook)
from mmext.hooks.safe_hook import LIFECYCLE_METHODS

MONITORS = (LossStabilityHook, ClassAPTrackerHook, AnchorMatchStatsHook)


def timed(fn, seconds, key):
    """``fn`` that adds its own duration to ``seconds[key]``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[key] += time.perf_counter() - start
    return wrapper


def instrument(runner, seconds):
    """Time every lifecycle method of the monitors and the anchor counting."""
    for hook in runner.hooks:
        if not isinstance(hook, MONITORS):
            continue
        name = type(hook).__name__
        for method in LIFECYCLE_METHODS:
            if method in type(hook).__dict__:
                setattr(hook, method, timed(getattr(hook, method), seconds,
                                            name))
        if isinstance(hook, AnchorMatchStatsHook):
            hook._count = timed(hook._count, seconds, name)


def train(root, work_dir, iters, val_interval, monitors):
    cfg = tiny_semi_config(root, work_dir, max_iters=iters,
                           val_interval=val_interval)
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.logger.interval = 10
    # the baseline has none of the monitors, whatever the demo config lists
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] not in [m.__name__ for m in MONITORS]]
    if monitors:
        cfg.custom_hooks = list(cfg.custom_hooks) + [
            dict(type='LossStabilityHook', window=10),
            dict(type='ClassAPTrackerHook',
                 watch_classes=['Severe_Rust', 'Chipped']),
            dict(type='AnchorMatchStatsHook', interval=5)]
    runner = build_runner(cfg)
    seconds = defaultdict(float)
    instrument(runner, seconds)
    start = time.perf_counter()
    runner.train()
    return time.perf_counter() - start, dict(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=30, help='training iterations')
    parser.add_argument('--val-interval', type=int, default=15,
                        help='validate every N iterations (ClassAPTrackerHook runs then)')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, 'data')
        make_demo_dataset(root, seed=1, num_labeled=12, num_unlabeled=12,
                          num_val=8, image_size=96)
        base_s, _ = train(root, os.path.join(tmp, 'base'), args.iters,
                          args.val_interval, monitors=False)
        mon_s, parts = train(root, os.path.join(tmp, 'mon'), args.iters,
                             args.val_interval, monitors=True)
    inside = sum(parts.values())
    print(f'{"run":28}  {"seconds":>8}')
    print(f'{"-" * 28}  {"-" * 8}')
    print(f'{"without monitors":28}  {base_s:8.2f}')
    print(f'{"with monitors":28}  {mon_s:8.2f}')
    for name, sec in sorted(parts.items()):
        print(f'{"  inside " + name:28}  {sec:8.3f}')
    print(f'\nwall ratio with/without: {mon_s / base_s:.3f} (noisy on a shared CPU)')
    print(f'monitor overhead: {inside / base_s:.2%} of the baseline '
          f'(requirement <= 3%)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
