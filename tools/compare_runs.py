#!/usr/bin/env python
"""Compare training runs: per-class numbers, deltas against a control, intervals.

Arms are NAME=WORK_DIR[,WORK_DIR...] (several work_dirs = seeds of one arm);
the first arm is the control. For every run it reads the work_dir (final and
best per-class AP of teacher and student, pseudo-label kept ratio and
precision per stage, RPN positives per GT box, loss level and CV) and prints
per arm the mean over seeds and, against the control, the paired-by-seed
delta with a 95% Student-t interval (2+ seeds).

With --predictions NAME=PKL[,PKL...] for every arm (tools/test.py --out on
the same validation set, in seed order) and --gt VAL.json it adds a paired
bootstrap over validation images of the per-class AP (and AP50) delta:
matches computed once by pycocotools, --resamples resamples re-accumulated.

--expect takes success criteria: 'Severe_Rust:ap>=0.03' 'Chipped:ap50>0.1'
'kept_ratio_cls:up' 'mAP:up'; printed as a PASS/FAIL table (a delta whose
interval excludes 0 is marked significant).

Writes to --out-dir: compare.json, compare.csv, expectations.csv,
class_ap.png (per-class AP per arm with intervals), ap_progression.png.

Example:
    python tools/compare_runs.py stock=work_dirs/a_s0,work_dirs/a_s1 \\
        perclass=work_dirs/b_s0,work_dirs/b_s1 \\
        --predictions stock=work_dirs/a_s0/eval/p.pkl,work_dirs/a_s1/eval/p.pkl \\
        perclass=work_dirs/b_s0/eval/p.pkl,work_dirs/b_s1/eval/p.pkl \\
        --gt work_dirs/demo/data/annotations/val.json \\
        --expect 'Chipped:ap>=0.08' 'kept_ratio_cls:up' --out-dir work_dirs/cmp
"""
import argparse
import os
import sys
import os.path as osp
from typing import Dict, List, Optional

if 'mmext' not in sys.modules:
    # --help and argument errors answer before torch is imported: mmext is
    # registered in mmdet after the arguments are parsed (main)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext import register_all_modules  # noqa: E402
from mmext.utils.tables import format_table, write_csv, write_json
from mmext.utils import MMExtError, run_cli
from mmext.utils.cli import nonnegative_int, output_dir, positive_int


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('arms', nargs='+', metavar='NAME=WORK_DIR[,...]',
                        help='arms; the first is the control')
    parser.add_argument('--predictions', nargs='+', default=[],
                        metavar='NAME=PKL[,...]',
                        help='predictions of every arm, seeds in the order '
                        'of its work_dirs')
    parser.add_argument('--gt', help='validation COCO json (with '
                        '--predictions)')
    parser.add_argument('--resamples', type=positive_int, default=1000,
                        help='bootstrap resamples (1000)')
    parser.add_argument('--seed', type=nonnegative_int, default=0,
                        help='seed of the bootstrap (0)')
    parser.add_argument('--window', type=positive_int, default=5,
                        help='pseudo-label records averaged (last 5)')
    parser.add_argument('--expect', nargs='+', default=[],
                        help="criteria, e.g. 'Chipped:ap>=0.08' "
                        "'kept_ratio_cls:up'")
    parser.add_argument('--out-dir', type=output_dir, default='work_dirs/compare_runs')
    args = parser.parse_args(argv)
    if args.resamples < 10:
        raise MMExtError(f'--resamples must be >= 10, got {args.resamples}')
    if args.window < 1:
        raise MMExtError(f'--window must be >= 1, got {args.window}')
    if args.predictions and not args.gt:
        raise MMExtError('--predictions needs --gt (the validation COCO json)')
    return args


def run_classes(work_dir: str) -> List[str]:
    """Class names of a run, from the config mmengine dumped into it."""
    from mmext.runs import find_run_config
    from mmext.utils.config import (load_config, metainfo_classes,
                                    train_dataset_cfg)
    if not osp.isdir(work_dir):
        raise MMExtError(f'{work_dir}: no such work_dir')
    cfg = load_config(find_run_config(work_dir))
    classes = metainfo_classes(train_dataset_cfg(cfg))
    if not classes:
        raise MMExtError(f'{work_dir}: its config names no classes '
                         '(metainfo.classes)')
    return list(classes)


def bootstrap(args, arms: Dict[str, List[str]], class_names: List[str]):
    """Paired bootstrap rows per non-control arm, for AP and AP50."""
    from mmext.evaluation.bootstrap_ap import eval_matches, paired_bootstrap
    from mmext.evaluation.coco_match import (coco_from_detections,
                                           coco_from_table, run_cocoeval)
    from mmext.experiments.compare_runs import parse_arm
    from mmext.evaluation.predictions import load_detections
    from mmext.data import load_coco
    preds = dict(parse_arm(p) for p in args.predictions)
    missing = [a for a in arms if a not in preds]
    if missing:
        raise MMExtError(f'--predictions: no predictions for arm(s) '
                         f'{", ".join(missing)}')
    gt = load_coco(args.gt, class_names)
    gt_coco = coco_from_table(gt)
    matches = {}
    for arm, paths in preds.items():
        if arm not in arms:
            raise MMExtError(f'--predictions: {arm!r} is not an arm')
        matches[arm] = []
        for path in paths:
            dets = load_detections(path, gt)
            unknown = dets.skip_counts().get('unknown image id', 0)
            if unknown:
                raise MMExtError(f'{path}: {unknown} detections on images '
                                 f'not in {args.gt} (predictions of another '
                                 'validation set?)')
            matches[arm].append(eval_matches(run_cocoeval(
                gt_coco, coco_from_detections(gt_coco, dets))))
    names = list(arms)
    control = matches[names[0]]
    out = {}
    for arm in names[1:]:
        n = min(len(control), len(matches[arm]))
        out[arm] = {
            metric: paired_bootstrap(control[:n], matches[arm][:n],
                                     class_names, args.resamples, args.seed,
                                     iou)
            for metric, iou in (('ap', None), ('ap50', 0.5))}
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    from mmext.experiments.compare_runs import (check_expectations,
                                             check_same_classes,
                                             comparison_rows,
                                             parse_expectation, parse_arm,
                                             run_metrics)
    expectations = [parse_expectation(e) for e in args.expect]
    arms = dict(parse_arm(a) for a in args.arms)
    if len(arms) != len(args.arms):
        raise MMExtError('arm names must be unique')
    class_names = check_same_classes(
        {wd: run_classes(wd) for dirs in arms.values() for wd in dirs})
    os.makedirs(args.out_dir, exist_ok=True)
    runs = {arm: [run_metrics(wd, class_names, args.window) for wd in dirs]
            for arm, dirs in arms.items()}
    rows = comparison_rows(runs, class_names)
    boot = bootstrap(args, arms, class_names) if args.predictions else {}

    control = list(arms)[0]
    print(f'control: {control}; seeds per arm: '
          + ', '.join(f'{a} {len(d)}' for a, d in arms.items()))
    ap_rows = [r for r in rows if r['metric'] == 'final_teacher_ap']
    print('\nFinal teacher AP per class (mean over seeds; delta paired by '
          'seed, 95% t interval with 2+ seeds)')
    print(format_table(ap_rows, ['arm', 'class', 'mean', 'std', 'n',
                                 'delta', 'delta_ci_low', 'delta_ci_high'],
                       digits=3))
    summary_metrics = ('final_mAP', 'final_mAP50', 'best_mAP', 'kept_ratio_cls',
                       'precision_cls', 'pos_per_gt', 'no_pos_share',
                       'loss_cv')
    print('\nOther numbers (class "all")')
    print(format_table([r for r in rows if r['metric'] in summary_metrics
                        and r['class'] == 'all'],
                       ['arm', 'metric', 'mean', 'std', 'n', 'delta',
                        'delta_ci_low', 'delta_ci_high'], digits=3))
    for arm, metrics in boot.items():
        for metric, brows in metrics.items():
            print(f'\nPaired bootstrap over validation images, {arm} - '
                  f'{control}, per-class {metric} ({args.resamples} '
                  'resamples, 95% interval)')
            print(format_table(brows, ['class', 'control', 'arm', 'delta',
                                       'ci_low', 'ci_high', 'p_le_0'],
                               digits=3))
    intervals = {arm: {r['class']: r for r in m['ap']}
                 for arm, m in boot.items()}
    exp_rows = check_expectations(expectations, runs, intervals)
    if exp_rows:
        print('\nExpectations')
        print(format_table(exp_rows, ['criterion', 'arm', 'value', 'control',
                                      'significant', 'result'], digits=3))
    write_outputs(args.out_dir, runs, rows, boot, exp_rows, class_names)
    return 0


def write_outputs(out_dir: str, runs: dict, rows: List[dict], boot: dict,
                  exp_rows: List[dict], class_names: List[str]) -> None:
    from mmext.viz.compare_plots import plot_ap_progression, plot_class_ap
    write_json({'rows': rows, 'bootstrap': boot, 'expectations': exp_rows,
                'runs': runs}, osp.join(out_dir, 'compare.json'))
    write_csv(rows, osp.join(out_dir, 'compare.csv'), list(rows[0]))
    if exp_rows:
        write_csv(exp_rows, osp.join(out_dir, 'expectations.csv'),
                  list(exp_rows[0]))
    means = {arm: [next((r['mean'] for r in rows if r['arm'] == arm
                         and r['metric'] == 'final_teacher_ap'
                         and r['class'] == c), None) for c in class_names]
             for arm in runs}
    intervals = {}
    control = list(runs)[0]
    for arm in runs:
        if arm in boot:
            # the arm's AP = control AP + delta: its interval is the delta's
            brow = {r['class']: r for r in boot[arm]['ap']}
            intervals[arm] = [
                (brow[c]['arm'] - brow[c]['delta'] + brow[c]['ci_low'],
                 brow[c]['arm'] - brow[c]['delta'] + brow[c]['ci_high'])
                if brow[c]['ci_low'] is not None else None
                for c in class_names]
        elif arm != control:
            intervals[arm] = [None] * len(class_names)
    paths = [plot_class_ap(class_names, means, intervals,
                           osp.join(out_dir, 'class_ap.png'),
                           'final teacher AP per class (bars: control + '
                           'paired bootstrap 95% interval of the delta)'),
             plot_ap_progression(class_names, {
                 arm: [r['history'] for r in seeds]
                 for arm, seeds in runs.items()},
                 osp.join(out_dir, 'ap_progression.png'))]
    for path in paths:
        print(f'wrote {path}')
    print(f'wrote {osp.join(out_dir, "compare.json")}, compare.csv')


if __name__ == '__main__':
    run_cli(main)
