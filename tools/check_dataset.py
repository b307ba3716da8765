#!/usr/bin/env python
"""Check a config's data, transforms and targets before training.

Annotations of every dataset (missing/unreadable images, size mismatches,
boxes outside the image or degenerate, duplicates, labels outside the
classes, empty images, VOC quirks, class distribution), then a sample of
images through the real pipelines, every Soft Teacher branch included (box
counts, boxes vs the recorded homography, image dtype/range vs the data
preprocessor, teacher/student views), and optionally predictions sanity.

Without a config, --ann checks the annotations of a file alone: a YOLO
data.yaml (every split it names, or data.yaml:val for one), or a COCO json /
VOC folder with --img-dir; --predictions are then checked against the YOLO val
split (or the COCO/VOC source).

Example:
    python tools/check_dataset.py configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        --data-root work_dirs/demo/data --out-dir work_dirs/demo/check_dataset \\
        --predictions work_dirs/demo/eval/predictions.pkl
    python tools/check_dataset.py --ann datasets/defects/data.yaml \\
        --predictions runs/detect/val/predictions.json --out-dir work_dirs/check_yolo
Writes OUT_DIR/checks.json, checks.csv, pipeline_samples.png,
class_distribution.png (and predictions.png). Exit code 1 when a check fails.
"""
import argparse
import os
import sys
from typing import List, Optional

if 'mmext' not in sys.modules:
    # --help and argument errors answer before torch is imported: mmext is
    # registered in mmdet after the arguments are parsed (main)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext import register_all_modules  # noqa: E402
from mmengine.config import DictAction

from mmext.utils import MMExtError, run_cli
from mmext.utils.config import load_config
from mmext.utils.cli import fraction, nonnegative_int, output_dir, positive_int


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='mmdet config file')
    parser.add_argument('--ann', help='instead of a config: YOLO data.yaml[:split], '
                        'COCO json or VOC folder (annotation checks only)')
    parser.add_argument('--img-dir', help='with --ann: image folder of a COCO json '
                        'or VOC folder')
    parser.add_argument('--yolo-category-base', type=int, choices=(0, 1), default=1,
                        help="with a YOLO --ann: predictions.json's category_id of "
                        'class 0 (1 = ultralytics 8.4, default; 0 = 8.0)')
    parser.add_argument('--data-root', help='dataset folder for every dataset of the config')
    parser.add_argument('--out-dir', type=output_dir, default='work_dirs/check_dataset',
                        help='output folder (default: %(default)s)')
    parser.add_argument('--num-samples', type=positive_int, default=100,
                        help='images per dataset run through the pipeline (default: %(default)s)')
    parser.add_argument('--num-drawn', type=nonnegative_int, default=3,
                        help='samples per dataset drawn in pipeline_samples.png')
    parser.add_argument('--seed', type=nonnegative_int, default=0)
    parser.add_argument('--predictions', help='predictions .pkl of tools/test.py '
                        '--out (with --ann also a COCO results / Ultralytics '
                        'predictions.json)')
    parser.add_argument('--score-thr', type=fraction, default=0.3,
                        help='score threshold of the prediction checks (default: %(default)s)')
    parser.add_argument('--skip-pipeline', action='store_true',
                        help='check annotations (and predictions) only')
    parser.add_argument('--all', action='store_true',
                        help='print passed checks too (they are always in checks.csv)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    # after registration: these import torch and mmdet
    from mmext.checks.dataset_check_report import (format_report, run_dataset_checks,
                                                     run_source_checks)
    for name in ('num_samples', 'num_drawn'):
        if getattr(args, name) < 0:
            raise MMExtError(f'--{name.replace("_", "-")} must be >= 0, got '
                             f'{getattr(args, name)}')
    if not 0 <= args.score_thr <= 1:
        raise MMExtError(f'--score-thr must be in [0, 1], got {args.score_thr}')
    if (args.config is None) == (args.ann is None):
        raise MMExtError('give a config or --ann (exactly one)')
    if args.ann:
        report = run_source_checks(
            args.ann, args.out_dir, img_dir=args.img_dir,
            predictions=args.predictions, score_thr=args.score_thr,
            yolo_category_base=args.yolo_category_base)
        print(format_report(report, show_pass=args.all))
        print('wrote: ' + ', '.join(report.files))
        return 1 if report.failed else 0
    cfg = load_config(args.config, args.cfg_options, args.data_root)
    report = run_dataset_checks(
        cfg, args.out_dir, num_samples=args.num_samples, seed=args.seed,
        num_drawn=args.num_drawn, predictions=args.predictions,
        score_thr=args.score_thr, skip_pipeline=args.skip_pipeline)
    print(format_report(report, show_pass=args.all))
    print('wrote: ' + ', '.join(report.files))
    return 1 if report.failed else 0


if __name__ == '__main__':
    run_cli(main)
