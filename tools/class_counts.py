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
import os
import sys
from typing import List, Optional

if 'mmext' not in sys.modules:
    # --help and argument errors answer before torch is imported: mmext is
    # registered in mmdet after the arguments are parsed (main)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext import register_all_modules  # noqa: E402
from mmext.utils.tables import format_table, write_json
from mmext.data import describe_skipped, load_any_boxes
from mmext.utils import run_cli
from mmext.utils.cli import finite_float, output_dir, output_file


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
    parser.add_argument('--out-dir', type=output_dir,
                        help='also write the table to OUT_DIR/class_counts.json')
    parser.add_argument('--json', type=output_file, metavar='PATH',
                        help='also write the table as JSON to this file (older '
                        'form of --out-dir)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    # after registration: these import torch and mmdet
    from mmext.losses import class_balanced_weights
    table = load_any_boxes(args.source, img_dir=args.img_dir)
    counts = table.class_counts()
    weights = class_balanced_weights(list(counts.values()), args.beta,
                                     background_weight=args.background_weight)
    rows = [dict(cls=name, n_c=n, weight=w)
            for (name, n), w in zip(counts.items(), weights)]
    if args.background_weight is not None:
        rows.append(dict(cls='(background)', n_c=None, weight=weights[-1]))
    print(format_table(rows, ['cls', 'n_c', 'weight'], ['class', 'n_c', 'weight']))
    ignored = int(table.ignore.sum())
    if ignored:
        # mmdet's assigners leave them out of training: counted, not dropped
        with_ignored = table.class_counts(include_ignored=True)
        print(f'{ignored} difficult/crowd box(es) not counted (ignored in '
              'training): ' + ', '.join(
                  f'{name} {with_ignored[name] - n}'
                  for name, n in counts.items() if with_ignored[name] > n))
    for record in describe_skipped(table.skipped):
        print(record)
    print('class_weight=[' + ', '.join(f'{w:.3f}' for w in weights) + ']')
    for path in filter(None, (args.json, args.out_dir and os.path.join(
            args.out_dir, 'class_counts.json'))):
        write_json(dict(source=args.source, beta=args.beta, classes=rows,
                        class_weight=weights), path)
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    run_cli(main)
