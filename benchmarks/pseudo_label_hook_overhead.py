#!/usr/bin/env python
"""Overhead of PseudoLabelStatsHook on the demo config's training iteration.

One training run (the demo Soft Teacher config, its real image scale, the
hook with the unlabeled split's ground truth as in the demo) switches the
hook on and off in blocks of ``--block`` iterations, interleaved ABBA
(on/off, off/on, ...) so that load drifts on a shared machine hit both
alike. "Off" means the model's own methods (no wrappers) and no hook code
at all. Each iteration is timed from the first ``before_train_iter`` hook to
the last ``after_train_iter`` hook (data loading excluded: it is the same
with and without). It prints

- the median iteration time with and without the hook and their ratio
  (requirement: <= 1.03), and
- the time spent inside the hook's own code per iteration (the recording in
  the wrapped get_pseudo_instances and after_train_iter, perf_counter),
  divided by the median iteration without the hook: the overhead measured
  without the noise of the machine.

Example:
    python benchmarks/pseudo_label_hook_overhead.py --block 3 --repeats 4
"""
import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
from mmengine.config import Config
from mmengine.hooks import Hook

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

from monitor_hooks_overhead import timed  # noqa: E402  (same helper)

DEMO_CONFIG = os.path.join(
    ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py')


class BlockSwitch(Hook):
    """First hook of an iteration: switch the stats hook, start the clock."""

    def __init__(self, stats, model, warmup: int, block: int, clock: dict):
        self.stats, self.model = stats, model
        self.warmup, self.block, self.clock = warmup, block, clock

    def mode(self, iteration: int) -> str:
        if iteration < self.warmup:
            return 'warmup'
        b = (iteration - self.warmup) // self.block
        first_on = (b // 2) % 2 == 0  # ABBA: on/off, off/on, on/off, ...
        return 'with hook' if (b % 2 == 0) == first_on else 'without hook'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        mode = self.mode(runner.iter)
        if mode == 'without hook':
            self.stats._unwrap()
            self.stats.disabled = True
        elif not self.stats._originals:
            self.stats.disabled = False
            self.stats._wrap(self.model)
        self.clock['mode'] = mode
        self.clock['start'] = time.perf_counter()


class BlockClock(Hook):
    """Last hook of an iteration: stop the clock."""

    def __init__(self, clock: dict, times: dict):
        self.clock, self.times = clock, times

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.times[self.clock['mode']].append(
            time.perf_counter() - self.clock['start'])


def build(data_root: str, work_dir: str, max_iters: int):
    from mmext.engine import build_runner, prepare_config
    cfg = Config.fromfile(DEMO_CONFIG)
    prepare_config(cfg, work_dir=work_dir, data_root=data_root,
                   max_iters=max_iters)
    cfg.train_cfg.val_interval = max_iters + 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = max_iters + 1
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    return build_runner(cfg)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--block', type=int, default=3,
                        help='iterations per on/off block (3)')
    parser.add_argument('--repeats', type=int, default=4,
                        help='on+off block pairs (4)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='iterations not measured (2)')
    parser.add_argument('--data-root', help='a demo dataset (default: make '
                        'one with 30 labeled and 60 unlabeled images)')
    args = parser.parse_args(argv)
    max_iters = args.warmup + 2 * args.block * args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if not root:
            from mmext.data.demo_dataset import make_demo_dataset
            root = os.path.join(tmp, 'data')
            make_demo_dataset(root, seed=0, num_labeled=30,
                              num_unlabeled=60, num_val=2, image_size=128)
        runner = build(root, os.path.join(tmp, 'work'), max_iters)
        stats = next(h for h in runner.hooks
                     if type(h).__name__ == 'PseudoLabelStatsHook')
        model = getattr(runner.model, 'module', runner.model)
        clock, times, inside = {}, defaultdict(list), defaultdict(float)
        runner.register_hook(BlockSwitch(stats, model, args.warmup,
                                         args.block, clock), 'HIGHEST')
        runner.register_hook(BlockClock(clock, times), 'LOWEST')
        stats._record_batch = timed(stats._record_batch, inside, 'hook')
        stats.after_train_iter = timed(stats.after_train_iter, inside,
                                       'hook')
        runner.train()
        failure = stats.failure
    on, off = np.array(times['with hook']), np.array(times['without hook'])
    print(f'{"mode":14}  {"iters":>5}  {"median s":>8}  {"mean s":>8}')
    print(f'{"-" * 14}  {"-" * 5}  {"-" * 8}  {"-" * 8}')
    for name, t in (('without hook', off), ('with hook', on)):
        print(f'{name:14}  {len(t):5d}  {np.median(t):8.3f}  {t.mean():8.3f}')
    ratio = np.median(on) / np.median(off)
    own = inside['hook'] / len(on) / np.median(off)
    print(f'\nmedian iteration ratio with/without: {ratio:.3f} '
          '(requirement <= 1.03; noisy on a shared CPU)')
    print(f"hook's own code: {1000 * inside['hook'] / len(on):.1f} ms per "
          f'iteration = {own:.2%} of an iteration without it')
    if failure:
        print(f'WARNING: the hook failed during the run: {failure}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
