#!/usr/bin/env python
"""Does LossStabilityHook stay quiet on a healthy run and warn on a broken one?

Three demo runs with the demo config's LossStabilityHook (window 100):

- ``healthy``: the demo config as it is;
- ``lr_spike``: the learning rate x10 from ``--inject-at`` for
  ``--spike-iters`` iterations (two chained MultiStepLR, x10 then x0.1);
- ``thr0``: every pseudo-label threshold (initial, RPN, R-CNN) at 0 from
  ``--inject-at`` on (PerClassSoftTeacher ``fixed`` policies with
  ``warmup_iters``): every teacher box, noise included, becomes a pseudo
  label.

For each it prints the number of LossStabilityHook warnings before and after
the injection, the iteration of the first warning after it, and the
per-window numbers the hook wrote (``loss_stability.jsonl``), and writes
``summary.json`` under ``--out``. A run whose last checkpoint exists is not
trained again.

Example:
    python benchmarks/loss_stability.py --iters 800 --inject-at 400
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

from mmext.runs import files

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py')


def arm_config(arm: str, args) -> str:
    """The demo config plus the arm's injection, as a file under --out."""
    from mmengine.config import Config
    base = Config.fromfile(DEMO)
    lines = [f'_base_ = [{DEMO!r}]',
             f'train_cfg = dict(max_iters={args.iters})']
    milestone = int(base.param_scheduler[1]['milestones'][0] * args.iters
                    / base.train_cfg.max_iters)
    sched = [dict(base.param_scheduler[0]),
             dict(base.param_scheduler[1], end=args.iters,
                  milestones=[milestone])]
    if arm == 'lr_spike':
        for at, gamma in ((args.inject_at, 10.0),
                          (args.inject_at + args.spike_iters, 0.1)):
            sched.append(dict(type='MultiStepLR', begin=0, end=args.iters,
                              by_epoch=False, milestones=[at], gamma=gamma))
    lines.append(f'param_scheduler = {sched!r}')
    if arm == 'thr0':
        classes = len(base.metainfo['classes'])
        semi = base.model.semi_train_cfg
        stages = {}
        for key in ('pseudo_label_initial_score_thr', 'rpn_pseudo_thr',
                    'cls_pseudo_thr'):
            stages[key] = dict(_delete_=True, type='fixed',
                               values=[0.0] * classes, warmup_thr=semi[key],
                               warmup_iters=args.inject_at, update_interval=1,
                               floor=0.0)
        lines.append("model = dict(type='PerClassSoftTeacher', "
                     f'semi_train_cfg={stages!r})')
        hooks = list(base.custom_hooks) + [dict(type='PseudoThresholdHook')]
        lines.append(f'custom_hooks = {hooks!r}')
    path = osp.join(args.out, 'configs', f'{arm}.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def train(arm: str, args) -> str:
    work = osp.join(args.out, arm)
    if osp.isfile(osp.join(work, f'iter_{args.iters}.pth')):
        return work
    cmd = [sys.executable, 'tools/train.py', arm_config(arm, args),
           '--work-dir', work, '--data-root', args.data_root]
    print(f'[{arm}] training {args.iters} iterations', flush=True)
    start = time.time()
    log = work + '.log'
    os.makedirs(args.out, exist_ok=True)
    with open(log, 'w') as f:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    if rc:
        raise SystemExit(f'[{arm}] tools/train.py failed (exit {rc}): {log}')
    print(f'[{arm}] trained in {time.time() - start:.0f} s', flush=True)
    return work


def hook_warnings(work: str) -> list:
    """(iteration, message) of every LossStabilityHook warning in the log."""
    from mmext.runs.log_warnings import read_warnings
    return [(w['iter'], w['message']) for w in read_warnings(work)
            if 'LossStabilityHook' in w['message']]


def windows(work: str) -> list:
    path = osp.join(work, files.LOSS_STABILITY)
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise(arm: str, work: str, args) -> dict:
    warns = hook_warnings(work)
    inject = None if arm == 'healthy' else args.inject_at
    before = [w for w in warns if inject is None or (w[0] or 0) <= inject]
    after = [w for w in warns if inject is not None and (w[0] or 0) > inject]
    return dict(arm=arm, inject_at=inject, warnings_before=len(before),
                warnings_after=len(after),
                first_after=after[0][0] if after else None,
                messages=[m for _, m in warns], windows=windows(work))


def print_windows(summary: dict) -> None:
    for rec in summary['windows']:
        cells = []
        for key, v in rec['losses'].items():
            rise = v.get('rise')
            ratio = v.get('noise_ratio')
            cells.append(f'{key} {v["level"]:.3f}'
                         + (f' rise {rise:+.0%}' if rise is not None else '')
                         + (f' noise x{ratio:.1f}' if ratio is not None
                            else '')
                         + (' [ref]' if v.get('reference') else ''))
        print(f'    iter {rec["iter"]:>5}: ' + '; '.join(cells))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arms', nargs='+',
                        default=['healthy', 'lr_spike', 'thr0'])
    parser.add_argument('--iters', type=int, default=800)
    parser.add_argument('--inject-at', type=int, default=400)
    parser.add_argument('--spike-iters', type=int, default=50)
    parser.add_argument('--data-root',
                        default=osp.join(ROOT, 'work_dirs/demo/data'))
    parser.add_argument('--out',
                        default=osp.join(ROOT, 'work_dirs/bench_stability'))
    args = parser.parse_args(argv)
    if not osp.isdir(args.data_root):
        from mmext.data.demo_dataset import make_demo_dataset
        make_demo_dataset(args.data_root, seed=0)
    sys.path.insert(0, ROOT)
    import mmext  # noqa: F401
    results = []
    for arm in args.arms:
        work = train(arm, args)
        summary = summarise(arm, work, args)
        results.append(summary)
        print(f'{arm}: {summary["warnings_before"]} warning(s) before '
              f'iter {summary["inject_at"] or args.iters}, '
              f'{summary["warnings_after"]} after (first at '
              f'{summary["first_after"]})')
        for message in summary['messages']:
            print(f'    {message}')
        print_windows(summary)
    with open(osp.join(args.out, 'summary.json'), 'w') as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
