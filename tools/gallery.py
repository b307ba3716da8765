#!/usr/bin/env python
"""An image gallery of a model's errors, per class and TIDE error type.

For any predictions and ground truth (COCO json, VOC folder or YOLO
data.yaml; an mmdet pickle, COCO results or Ultralytics predictions.json):
the error breakdown of tools/error_breakdown.py, then per class and type
the K most costly cases drawn on the real images (missed GT boxes largest
first, false positives highest score first; GT green, detection red), and
the per-box table behind them.

Example:
    python tools/gallery.py work_dirs/demo/eval/predictions.pkl \\
        --config configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        --data-root work_dirs/demo/data --out-dir work_dirs/demo/gallery
Writes OUT_DIR/index.html, OUT_DIR/<class>_<type>.png and
OUT_DIR/errors.{csv,json} (one row per detection and missed box) and
OUT_DIR/confusion.{csv,png} (which class each classification error was
taken for).
"""
import argparse
import os
import sys
from typing import List, Optional

if 'mmext' not in sys.modules:
    # reads files only: skip registering mmext in mmdet (torch, seconds)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext.evaluation.ground_truth import (add_backend_arg, add_prediction_args,
                                           load_gt_and_detections,
                                           prediction_inputs)
from mmext.utils import run_cli
from mmext.utils.cli import output_dir, positive_int


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prediction_args(parser)
    add_backend_arg(parser)
    parser.add_argument('--img-dir', help="folder of the GT's images "
                        "(default: the config's val images)")
    parser.add_argument('--k', type=positive_int, default=8,
                        help='cases per class and error type (8)')
    parser.add_argument('--out-dir', type=output_dir, required=True)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmext.evaluation.error_breakdown import error_breakdown
    from mmext.evaluation.error_table import (ERROR_COLUMNS,
                                              classification_confusion,
                                              error_rows)
    from mmext.viz.analysis_plots import plot_confusion
    from mmext.evaluation.ground_truth import gt_image_dir
    from mmext.utils.tables import skip_summary, write_csv, write_json
    from mmext.viz.error_gallery import write_gallery
    gt, dets = load_gt_and_detections(**prediction_inputs(args))
    img_dir = gt_image_dir(gt, args.img_dir, args.config, args.data_root)
    breakdown = error_breakdown(gt, dets, backend=args.backend)
    if dets.skip_counts():
        print(skip_summary(dets.skip_counts(), 'detections'))
    rows = error_rows(gt, dets, breakdown)
    out = os.path.join(args.out_dir, 'errors')
    write_csv(rows, out + '.csv', list(ERROR_COLUMNS))
    write_json(dict(columns=list(ERROR_COLUMNS), rows=rows), out + '.json')
    confusion = classification_confusion(rows, list(gt.class_names))
    write_csv([dict(gt_class=name, **{n: int(v) for n, v in zip(
        gt.class_names, confusion[k])}) for k, name in enumerate(
            gt.class_names)], os.path.join(args.out_dir, 'confusion.csv'))
    plot_confusion(confusion, gt.class_names,
                   os.path.join(args.out_dir, 'confusion.png'))
    written = write_gallery(gt, dets, breakdown, img_dir, args.out_dir, args.k)
    if written['unreadable']:
        print(f'{len(written["unreadable"])} image(s) could not be read and '
              f'were left blank, e.g. {written["unreadable"][0]} (is '
              '--img-dir right?)')
    print(f'{written["cases"]} cases drawn in {len(written["images"])} '
          f'images; {len(rows)} boxes in {out}.csv, .json')
    print(f'gallery: {written["index"]}')
    return 0


if __name__ == '__main__':
    run_cli(main)
