#!/usr/bin/env python
"""Boxes per class n_c and class-balanced weights (Cui et al. 2019) for a loss config.

w_c is proportional to (1 - beta) / (1 - beta^n_c), normalised to sum to the
number of classes; --background-weight appends the background entry that a
softmax R-CNN head's class_weight needs (num_classes + 1 entries).

Examples:
    python tools/class_counts.py work_dirs/demo/data/annotations/train_labeled.json \\
        --beta 0.99 --background-weight 1.0 --json work_dirs/demo/class_counts/cb.json
    python tools/class_counts.py datasets/defects/data.yaml --beta 0.99
"""
import argparse
from typing import List, Optional

from mmext.utils.tables import format_table, write_json
from mmext.losses import class_balanced_weights
from mmext.data import describe_skipped, load_any_boxes
from mmext.utils import run_cli
from mmext.utils.cli import finite_float, output_file


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='COCO .json, VOC annotation folder, YOLO '
                        'data.yaml (its train split; data.yaml:val for another), '
                        'or mmdet config (its labeled train set)')
    parser.add_argument('--img-dir', help='VOC image folder')
    parser.add_argument('--beta', type=finite_float, default=0.999,
                        help='class-balancing beta in [0, 1) (0.999)')
    parser.add_argument('--background-weight', type=finite_float,
                        help='append this background weight (R-CNN softmax heads)')
    parser.add_argument('--json', type=output_file, metavar='PATH', help='also write the table as JSON')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    table = load_any_boxes(args.source, img_dir=args.img_dir)
    counts = table.class_counts()
    weights = class_balanced_weights(list(counts.values()), args.beta,
                                     background_weight=args.background_weight)
    rows = [dict(cls=name, n_c=n, weight=w)
            for (name, n), w in zip(counts.items(), weights)]
    if args.background_weight is not None:
        rows.append(dict(cls='(background)', n_c=None, weight=weights[-1]))
    print(format_table(rows, ['cls', 'n_c', 'weight'], ['class', 'n_c', 'weight']))
    for record in describe_skipped(table.skipped):
        print(record)
    print('class_weight=[' + ', '.join(f'{w:.3f}' for w in weights) + ']')
    if args.json:
        write_json(dict(source=args.source, beta=args.beta, classes=rows,
                        class_weight=weights), args.json)
        print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    run_cli(main)
