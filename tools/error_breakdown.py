#!/usr/bin/env python
"""TIDE-style error breakdown per class, with the AP50 each error type costs.

Types: classification, localization, both, duplicate, background, missed.
dAP = AP50 after fixing only that type minus AP50 now: TIDE's own numbers
(--dap-mode tide, the default) or each fix re-evaluated by pycocotools'
COCOeval (--dap-mode coco). Works on box-only COCO data (no segmentation
fields needed).

Example:
    python tools/error_breakdown.py work_dirs/demo/eval/predictions.pkl \\
        --gt work_dirs/demo/data/annotations/val.json \\
        --config configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        --out-dir work_dirs/demo/analysis/error_breakdown
Writes OUT_DIR/error_breakdown.{csv,json,png}; with --gallery K, the K most
costly cases per class and type drawn on the images in OUT_DIR/gallery/.
"""
import argparse
import os
import sys
from typing import List, Optional

if 'mmext' not in sys.modules:
    # reads files only: skip registering mmext in mmdet (torch, seconds)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext.evaluation.error_breakdown import (DAP_MODES, ERROR_TYPES,
                                            error_breakdown)
from mmext.evaluation.ground_truth import (add_backend_arg, add_prediction_args,
                                         load_gt_and_detections,
                                         prediction_inputs)
from mmext.utils.tables import (format_table, skip_summary, write_csv,
                                   write_json)
from mmext.data import describe_skipped
from mmext.utils import MMExtError, run_cli
from mmext.utils.cli import nonnegative_int, output_dir

SHORT = dict(classification='cls', localization='loc', both='both',
             duplicate='dupe', background='bkg', missed='miss')


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prediction_args(parser)
    parser.add_argument('--out-dir', type=output_dir, help='folder for CSV, JSON and the plot')
    add_backend_arg(parser)
    parser.add_argument(
        '--gallery', type=nonnegative_int, default=0, metavar='K',
        help='draw the K most costly cases per class and error type on the '
        'images into OUT_DIR/gallery/ (index.html; needs --out-dir)')
    parser.add_argument('--img-dir', help="folder of the GT's images for "
                        "--gallery (default: the config's val images)")
    parser.add_argument(
        '--dap-mode', choices=DAP_MODES, default='tide',
        help="tide: TIDE's dAP (default); coco: each fix re-evaluated by "
        "COCOeval, so AP50 + dAP is what CocoMetric reports after it")
    return parser.parse_args(argv)


DAP_SOURCE = dict(tide="TIDE's fixes and AP, no re-matching",
                  coco='pycocotools re-evaluation')


def _print_report(rows, skipped, mode: str) -> None:
    if skipped:
        print(skip_summary(skipped, 'detections'))
    print('Errors (count) per class:')
    print(format_table(rows, ['class'] + [f'n_{t}' for t in ERROR_TYPES],
                       ['class'] + [SHORT[t] for t in ERROR_TYPES]))
    print(f'\nAP50 gained if fixed (dAP, {mode}: {DAP_SOURCE[mode]}):')
    print(format_table(rows, ['class', 'ap50'] + [f'dap_{t}'
                                                  for t in ERROR_TYPES],
                       ['class', 'AP50'] + [SHORT[t] for t in ERROR_TYPES]))
    total = rows[-1]
    worst = max(ERROR_TYPES, key=lambda t: total[f'dap_{t}'])
    print(f'\nlargest: {worst} errors (fixing them adds '
          f'{total[f"dap_{worst}"]:.3f} mAP50)')


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.gallery and not args.out_dir:
        raise MMExtError('--gallery needs --out-dir (the gallery is a folder '
                         'of images)')
    gt, dets = load_gt_and_detections(**prediction_inputs(args))
    result = error_breakdown(gt, dets, dap_mode=args.dap_mode,
                             backend=args.backend)
    rows = result.rows()
    skipped = dets.skip_counts()
    for line in describe_skipped(gt.skipped, 'ground-truth records'):
        print(line)
    _print_report(rows, skipped, args.dap_mode)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        out = os.path.join(args.out_dir, 'error_breakdown')
        write_csv(rows, out + '.csv')
        write_json(dict(fg_iou=0.5, bg_iou=0.1, dap_mode=args.dap_mode,
                        ref_map50=result.ref_map50, rows=rows,
                        skipped_detections=skipped,
                        skipped_ground_truth=gt.skip_counts()), out + '.json')
        from mmext.viz.analysis_plots import plot_error_breakdown
        plot_error_breakdown(rows[:-1], ERROR_TYPES, out + '.png')
        print(f'written: {out}.csv, .json, .png')
    if args.gallery:
        _write_gallery(args, gt, dets, result)
    return 0


def _write_gallery(args, gt, dets, result) -> None:
    from mmext.evaluation.ground_truth import gt_image_dir
    from mmext.viz.error_gallery import write_gallery
    img_dir = gt_image_dir(gt, args.img_dir, args.config, args.data_root)
    written = write_gallery(gt, dets, result, img_dir,
                            os.path.join(args.out_dir, 'gallery'), args.gallery)
    if written['unreadable']:
        print(f'gallery: {len(written["unreadable"])} image(s) could not be '
              f'read, e.g. {written["unreadable"][0]} (is --img-dir right?)')
    print(f'gallery: {written["cases"]} cases in {len(written["images"])} '
          f'images, {written["index"]}')


if __name__ == '__main__':
    run_cli(main)
