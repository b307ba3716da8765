#!/usr/bin/env python
"""Sweep the confidence threshold: TP/FP/FN, precision, recall, F1, detection rate.

Matching is COCOeval (faster-coco-eval's; pycocotools' without it): one GT per
detection, crowd/ignore, the IoU threshold. AP/AP50 are COCOeval's own numbers
on the same input.

Example:
    python tools/threshold_sweep.py work_dirs/demo/eval/predictions.pkl \\
        --gt work_dirs/demo/data/annotations/val.json \\
        --config configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        --compare 0.25 0.6 --out-dir work_dirs/demo/analysis/threshold_sweep
Writes OUT_DIR/sweep.csv, sweep.json, lost_images.csv, pr_curves.png,
f1_vs_threshold.png.
"""
import argparse
import os
import sys
from typing import List, Optional

import numpy as np

if 'mmext' not in sys.modules:
    # reads files only: skip registering mmext in mmdet (torch, seconds)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext.evaluation.ground_truth import (add_backend_arg, add_prediction_args,
                                         load_gt_and_detections,
                                         prediction_inputs)
from mmext.utils.tables import (format_table, skip_summary, write_csv,
                                   write_json)
from mmext.evaluation.threshold_sweep import (default_thresholds, images_lost,
                                            sweep_rows, sweep_summary,
                                            sweep_thresholds)
from mmext.data import describe_skipped
from mmext.evaluation.coco_match import resolve_backend
from mmext.utils import MMExtError, run_cli
from mmext.utils.cli import (fraction, iou_threshold, nonnegative_float,
                             nonnegative_int,
                             output_dir, positive_float)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prediction_args(parser)
    parser.add_argument('--iou-thr', type=iou_threshold, default=0.5,
                        help='IoU for a match, one of 0.50:0.05:0.95 (0.5)')
    parser.add_argument('--step', type=positive_float, default=0.05,
                        help='threshold grid step (0.05)')
    parser.add_argument('--compare', type=fraction, nargs=2,
                        metavar=('LOW', 'HIGH'),
                        help='list images detected at LOW but lost at HIGH')
    parser.add_argument('--by-size', type=nonnegative_float, nargs='*',
                        metavar='EDGE', help='also AP, AP50 and recall per '
                        'class by box size: sqrt(area) edges in pixels (none '
                        "given: COCO's 0 32 96; the last range is open)")
    parser.add_argument('--gallery', type=nonnegative_int, default=0,
                        metavar='K', help='draw the K first images lost '
                        'between the --compare thresholds into '
                        'OUT_DIR/lost_images.png')
    parser.add_argument('--img-dir', help="folder of the GT's images for "
                        "--gallery (default: the config's val images)")
    parser.add_argument('--out-dir', type=output_dir, help='folder for CSV, JSON and plots')
    parser.add_argument('--no-plots', action='store_true')
    add_backend_arg(parser)
    return parser.parse_args(argv)


def _grid(args: argparse.Namespace) -> np.ndarray:
    if args.step > 1:
        raise MMExtError(f'--step {args.step}: must be in (0, 1]')
    grid = set(default_thresholds(args.step).tolist())
    grid.update(float(t) for t in args.compare or [])  # in [0, 1]: fraction
    return np.array(sorted(grid))


def _print_report(result, lost, args, skipped) -> None:
    print(f'IoU threshold {result.iou_thr:.2f}; COCO AP {result.map:.4f}, '
          f'AP50 {result.map50:.4f} (COCOeval of {resolve_backend()}, '
          '100 dets/image)')
    if skipped:
        print(skip_summary(skipped, 'detections'))
    print('\nPer class (best-F1 threshold on the grid):')
    print(format_table(sweep_summary(result), [
        'class', 'num_gt', 'num_images', 'ap', 'ap50', 'best_f1_threshold',
        'best_f1', 'precision_at_best', 'recall_at_best'
    ], ['class', 'GT', 'images', 'AP', 'AP50', 'best thr', 'F1', 'P', 'R']))
    print('\nAll classes by threshold:')
    rows = [r for r in sweep_rows(result) if r['class'] == 'all']
    print(format_table(rows, [
        'threshold', 'tp', 'fp', 'fn', 'precision', 'recall', 'f1',
        'detection_rate'
    ], ['thr', 'TP', 'FP', 'FN', 'precision', 'recall', 'F1', 'det.rate']))
    if args.compare:
        low, high = sorted(args.compare)
        print(f'\n{len(lost)} images have a correct detection at score >= '
              f'{low} but none at >= {high}:')
        if lost:
            print(format_table(lost, [
                'file_name', 'class', 'best_score', 'box_w', 'box_h',
                'box_area_pct', 'ratio_h_over_w'
            ], ['image', 'class', 'best score', 'box w', 'box h', 'area %',
                'h/w']))


def _write_outputs(result, lost, out_dir: str, plots: bool,
                   skipped, gt_skipped) -> None:
    os.makedirs(out_dir, exist_ok=True)
    write_csv(sweep_rows(result), os.path.join(out_dir, 'sweep.csv'))
    write_csv(lost, os.path.join(out_dir, 'lost_images.csv'), [
        'image_id', 'file_name', 'class', 'best_score', 'box_w', 'box_h',
        'box_area_pct', 'ratio_h_over_w'
    ])
    write_json(
        dict(iou_thr=result.iou_thr, map=result.map, map50=result.map50,
             summary=sweep_summary(result), sweep=sweep_rows(result),
             lost_images=lost, skipped_detections=skipped,
             skipped_ground_truth=gt_skipped),
        os.path.join(out_dir, 'sweep.json'))
    if plots:
        from mmext.viz.analysis_plots import (plot_f1_vs_threshold,
                                              plot_pr_curves)
        plot_pr_curves(result.curves, os.path.join(out_dir, 'pr_curves.png'))
        plot_f1_vs_threshold(result.thresholds, result.curves,
                             os.path.join(out_dir, 'f1_vs_threshold.png'))
    print(f'\nwritten: {out_dir}/sweep.csv, sweep.json, lost_images.csv'
          + (', pr_curves.png, f1_vs_threshold.png' if plots else ''))


def _print_by_size(gt, dets, args) -> None:
    from mmext.evaluation.ap_by_size import COCO_SIZE_EDGES, ap_by_size
    edges = list(args.by_size) or list(COCO_SIZE_EDGES[:-1])
    try:
        rows = ap_by_size(gt, dets, edges + [1e5])
    except ValueError as exc:
        raise MMExtError(f'--by-size: {exc}') from None
    print('\nBy box size (sqrt of the area; COCOeval, GT and unmatched '
          'detections outside a range ignored):')
    print(format_table(rows, ['class', 'size', 'num_gt', 'ap', 'ap50',
                              'recall50'],
                       ['class', 'size', 'GT', 'AP', 'AP50', 'recall@0.5']))
    if args.out_dir:
        write_csv(rows, os.path.join(args.out_dir, 'ap_by_size.csv'))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    gt, dets = load_gt_and_detections(**prediction_inputs(args))
    if not np.isclose(np.linspace(0.5, 0.95, 10), args.iou_thr).any():
        raise MMExtError(f'--iou-thr {args.iou_thr}: COCOeval matches at '
                         '0.50:0.05:0.95 only')
    result = sweep_thresholds(gt, dets, _grid(args), iou_thr=args.iou_thr,
                              backend=args.backend)
    lost = (images_lost(result, gt, *args.compare, dets=dets)
            if args.compare else [])
    skipped = dets.skip_counts()
    for line in describe_skipped(gt.skipped, 'ground-truth records'):
        print(line)
    _print_report(result, lost, args, skipped)
    if args.by_size is not None:
        _print_by_size(gt, dets, args)
    if args.gallery and not (args.out_dir and args.compare):
        raise MMExtError('--gallery draws the images lost between the two '
                         '--compare thresholds: it needs --compare and --out-dir')
    if args.out_dir:
        _write_outputs(result, lost, args.out_dir, not args.no_plots, skipped,
                       gt.skip_counts())
    if args.gallery and lost:
        from mmext.evaluation.ground_truth import gt_image_dir
        from mmext.viz.error_gallery import write_lost_images
        img_dir = gt_image_dir(gt, args.img_dir, args.config, args.data_root)
        out = write_lost_images(lost[:args.gallery], img_dir, os.path.join(
            args.out_dir, 'lost_images.png'), *sorted(args.compare))
        print(f'drawn: {out["path"]} ({out["cases"]} images'
              + (f', {len(out["unreadable"])} unreadable' if out['unreadable']
                 else '') + ')')
    return 0


if __name__ == '__main__':
    run_cli(main)
