#!/usr/bin/env python
"""Does a per-class pseudo-label threshold help? Fixed vs lists vs policies.

Trains the demo Soft Teacher config once per arm, same data, same seed
(``randomness.seed``) and same iterations, then prints per class:

- pseudo-label precision and recall at the cls stage against the unlabeled
  split's hidden ground truth (PseudoLabelStatsHook, summed over the last
  ``--window`` iterations), and the cls-stage pseudo boxes per class;
- the classes left without any cls-stage pseudo label in that window;
- the teacher's final per-class AP (last validation) and, from each arm's
  predictions on the validation set (tools/test.py --out), the per-class AP
  delta against the first arm with a paired bootstrap 95% interval over the
  validation images (tools/compare_runs.py, 1000 resamples).

Arms (``--arms``, any subset, the first is the control):

- ``fixed``: the demo config (initial 0.3, rpn 0.5, cls 0.5);
- ``list``: fixed per-class rpn/cls lists ``--list-thr`` from iteration 0
  (default: the precision-0.7 recommendation of the README's unseeded demo
  run), initial 0.15;
- ``recommended``: the ``fixed`` arm's own recommendation as
  ``tools/plot_pseudo_stats.py --write-config`` writes it (precision 0.7,
  in force from the iteration it was measured at, iterations 601-800);
- ``proportion``: configs/.../tiny_demo_per-class-thr.py (LabelMatch rule);
- ``gmm``: the same with the Gaussian-mixture rule.

Each arm trains with ``tools/train.py`` into ``OUT/<arm>``; an arm whose
final checkpoint exists is not trained again (resume a benchmark by running
it again). ``--overhead`` instead measures, in one short run of the
proportion arm, the time spent in the per-class code (score recording,
per-class filters, the hook's update) against the median iteration.

Example:
    python benchmarks/pseudo_thresholds.py --iters 800 --out work_dirs/bench_thr
    python benchmarks/pseudo_thresholds.py --overhead --iters 40
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np

from mmext.runs import files

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
DEMO = osp.join(ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py')
PER_CLASS = osp.join(
    ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo_per-class-thr.py')
#: The precision-0.7 thresholds plot_pseudo_stats recommended for the README's
#: demo run (iterations 601-800): Severe_Rust, Chipped, Broken, Tip_Wear,
#: Scratched.
DEFAULT_LIST = (0.42, 0.18, 0.34, 0.28, 0.50)


def arm_config(arm: str, args) -> str:
    """The config file of an arm (written under OUT/configs for non-stock)."""
    if arm == 'fixed':
        return DEMO
    if arm == 'proportion':
        return PER_CLASS
    if arm == 'recommended':
        # what a user does: the fixed run's own recommendation, written by
        # plot_pseudo_stats --write-config (from the iteration it was
        # measured at; the run's thresholds before)
        path = osp.join(args.out, 'configs', 'recommended.py')
        if not osp.isfile(path):
            subprocess.run([sys.executable, 'tools/plot_pseudo_stats.py',
                            osp.join(args.out, 'fixed'), '--write-config',
                            path, '--out-dir',
                            osp.join(args.out, 'fixed', 'plot_pseudo_stats')],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return path
    if arm == 'list':
        thr = [float(v) for v in args.list_thr]
        body = (f"model = dict(semi_train_cfg=dict(rpn_pseudo_thr={thr!r}, "
                f"cls_pseudo_thr={thr!r}))\n")
    elif arm == 'gmm':
        body = ("gmm = dict(_delete_=True, type='gmm', mode='high', "
                "warmup_thr=0.5, min_scores=20, update_interval=10, "
                "window_images=256, floor=0.15, ceiling=0.9)\n"
                'model = dict(semi_train_cfg=dict(rpn_pseudo_thr=gmm, '
                'cls_pseudo_thr=gmm))\n')
    else:
        raise SystemExit(f'unknown arm {arm!r} (fixed, list, proportion, gmm)')
    path = osp.join(args.out, 'configs', f'{arm}.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'_base_ = [{PER_CLASS!r}]\n' + body)
    return path


def train_arm(arm: str, args) -> str:
    work = osp.join(args.out, arm)
    if osp.isfile(osp.join(work, f'iter_{args.iters}.pth')):
        print(f'[{arm}] already trained: {work}', flush=True)
        return work
    cmd = [sys.executable, 'tools/train.py', arm_config(arm, args),
           '--work-dir', work, '--data-root', args.data_root,
           '--max-iters', str(args.iters),
           '--cfg-options', f'randomness.seed={args.seed}']
    if osp.isdir(work) and any(f.endswith('.pth') for f in os.listdir(work)):
        cmd.append('--resume')
    print(f'[{arm}] training: {" ".join(cmd[1:])}', flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    print(f'[{arm}] trained in {time.time() - start:.0f} s', flush=True)
    return work


def predict_arm(arm: str, work: str, args) -> str:
    """The final teacher's predictions on the val set (tools/test.py --out)."""
    out = osp.join(work, files.PREDICTIONS)
    if osp.isfile(out):
        return out
    cmd = [sys.executable, 'tools/test.py', arm_config(arm, args),
           osp.join(work, f'iter_{args.iters}.pth'), '--work-dir',
           osp.join(work, 'eval'), '--data-root', args.data_root,
           '--out', out]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


def bootstrap_rows(works: dict, preds: dict, args) -> dict:
    """Paired bootstrap (val images) of each arm's per-class AP vs control."""
    out_dir = osp.join(args.out, 'compare')
    arms = list(works)
    cmd = [sys.executable, 'tools/compare_runs.py',
           *[f'{a}={works[a]}' for a in arms], '--predictions',
           *[f'{a}={preds[a]}' for a in arms], '--gt',
           osp.join(args.data_root, 'annotations', 'val.json'),
           '--resamples', '1000', '--out-dir', out_dir, '--expect',
           'Chipped:kept_ratio_cls:up', 'Broken:kept_ratio_cls:up',
           'Chipped:ap:up', 'Broken:ap:up', 'mAP:up']
    subprocess.run(cmd, cwd=ROOT, check=True)
    with open(osp.join(out_dir, 'compare.json')) as f:
        return json.load(f)['bootstrap']


def arm_summary(work: str, window: int) -> dict:
    """Per-class cls-stage precision/recall, counts and final teacher AP."""
    from mmext.runs.pseudo_records import (precision, read_records, recall,
                                           window_totals)
    from mmext.runs.validations import classwise_ap, read_work_dir_validations
    records = read_records(osp.join(work, files.PSEUDO_LABEL_STATS))
    last_iter = records[-1]['iter']
    recent = [r for r in records if r['first_iter'] > last_iter - window]
    names = records[-1]['classes']
    out = {'classes': {}, 'window': [recent[0]['first_iter'], last_iter],
           'thresholds': records[-1]['thresholds']}
    val = read_work_dir_validations(work)[-1]
    ap = classwise_ap(val, names).get('teacher', {})
    out['mAP'] = val.get('teacher/coco/bbox_mAP')
    out['mAP50'] = val.get('teacher/coco/bbox_mAP_50')
    totals = window_totals(recent)
    for name in names:
        out['classes'][name] = {
            'cls_boxes': int(totals['counts']['cls'][name]),
            'precision': precision(totals, 'cls', name),
            'recall': recall(totals, 'cls', name),
            'ap': ap.get(name)}
    out['without_pseudo'] = [n for n, c in out['classes'].items()
                             if c['cls_boxes'] == 0]
    return out


def print_table(summaries: dict) -> str:
    from mmext.utils.tables import format_table
    rows = []
    for arm, s in summaries.items():
        for name, c in s['classes'].items():
            ci = c.get('ap_delta_ci')
            rows.append({'arm': arm, 'class': name, **{
                k: v for k, v in c.items() if k != 'ap_delta_ci'},
                'ap_delta_ci': (f'[{ci[0]:+.3f}, {ci[1]:+.3f}]'
                                if ci and None not in ci else None)})
        rows.append({'arm': arm, 'class': 'mAP (mAP50)',
                     'ap': s['mAP'], 'cls_boxes': None,
                     'precision': None, 'recall': s['mAP50']})
    text = format_table(rows, ['arm', 'class', 'cls_boxes', 'precision',
                               'recall', 'ap', 'ap_delta', 'ap_delta_ci'],
                        digits=3)
    text += '\n\nclasses without cls-stage pseudo labels: ' + '; '.join(
        f'{arm}: {", ".join(s["without_pseudo"]) or "none"}'
        for arm, s in summaries.items())
    return text


def measure_overhead(args) -> int:
    """Own-code time of the per-class thresholds in one short run."""
    import tempfile
    from mmengine.config import Config
    from mmengine.hooks import Hook

    from mmext.engine import build_runner, prepare_config
    from monitor_hooks_overhead import timed

    times, inside = [], defaultdict(float)

    class Clock(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.start = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.fromfile(PER_CLASS)
        prepare_config(cfg, work_dir=osp.join(tmp, 'work'),
                       data_root=args.data_root, max_iters=args.iters)
        cfg.train_cfg.val_interval = args.iters + 1
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        cfg.default_hooks.checkpoint.interval = args.iters + 1
        cfg.randomness = dict(seed=args.seed)
        cfg.log_level = 'WARNING'
        # Only the hook the thresholds need: the overhead asked is the
        # per-class model's, not the monitors'.
        cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] in (
            'MeanTeacherHook', 'PseudoThresholdHook')]
        for stage in ('rpn_pseudo_thr', 'cls_pseudo_thr'):
            cfg.model.semi_train_cfg[stage]['update_interval'] = 5
        runner = build_runner(cfg)
        model = getattr(runner.model, 'module', runner.model)
        hook = next(h for h in runner.hooks
                    if type(h).__name__ == 'PseudoThresholdHook')
        runner.register_hook(Clock(), 'HIGHEST')
        model.record_teacher_scores = timed(model.record_teacher_scores,
                                            inside, 'own')
        model._filter_per_class = timed(model._filter_per_class, inside,
                                        'own')
        hook.after_train_iter = timed(hook.after_train_iter, inside, 'own')
        import copy
        deepcopy = copy.deepcopy

        def timed_copy(model_self, samples, stage, _orig=type(
                model)._filtered_copy):
            start = time.perf_counter()
            out = deepcopy(samples)
            inside['own'] += time.perf_counter() - start
            return model_self.filter_pseudo_instances(out, stage)

        model._filtered_copy = timed_copy.__get__(model)
        runner.train()
        state = model.pseudo_thresholds
    warm = np.array(times[5:])
    own = inside['own'] / len(times)
    print(f'iterations timed: {len(warm)}, median {np.median(warm):.3f} s')
    print(f'per-class threshold code (recording, filters and their sample '
          f'copies, hook update every 5 iterations): {1000 * own:.2f} ms per '
          f'iteration = {own / np.median(warm):.2%} of the median iteration '
          '(requirement <= 1%)')
    print(f'thresholds at the end: {json.dumps(state.in_force())}')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arms', nargs='+',
                        default=['fixed', 'list', 'recommended',
                                 'proportion', 'gmm'])
    parser.add_argument('--iters', type=int, default=800)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--window', type=int, default=200,
                        help='pseudo-label statistics of the last this many '
                        'iterations (200)')
    parser.add_argument('--list-thr', type=float, nargs=5,
                        default=list(DEFAULT_LIST))
    parser.add_argument('--data-root', default=osp.join(
        ROOT, 'work_dirs/demo/data'))
    parser.add_argument('--out', default=osp.join(ROOT,
                                                  'work_dirs/bench_thr'))
    parser.add_argument('--overhead', action='store_true')
    args = parser.parse_args(argv)
    if not osp.isdir(args.data_root):
        from mmext.data.demo_dataset import make_demo_dataset
        make_demo_dataset(args.data_root, seed=0)
    if args.overhead:
        return measure_overhead(args)
    summaries, works, preds = {}, {}, {}
    for arm in args.arms:
        works[arm] = train_arm(arm, args)
        summaries[arm] = arm_summary(works[arm], args.window)
    for arm in args.arms:
        preds[arm] = predict_arm(arm, works[arm], args)
    boot = bootstrap_rows(works, preds, args) if len(args.arms) > 1 else {}
    for arm, metrics in boot.items():
        for row in metrics['ap']:
            c = summaries[arm]['classes'][row['class']]
            c['ap_delta'] = row['delta']
            c['ap_delta_ci'] = [row['ci_low'], row['ci_high']]
    text = print_table(summaries)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'summary.json'), 'w') as f:
        json.dump(summaries, f, indent=1)
    with open(osp.join(args.out, 'summary.txt'), 'w') as f:
        f.write(text + '\n')
    print(f'wrote {osp.join(args.out, "summary.json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
