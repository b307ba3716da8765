#!/usr/bin/env python
"""Write mmext's synthetic defect dataset (COCO format).

Example:
    python tools/make_demo_dataset.py --out work_dirs/demo/data --seed 0
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
from mmext.utils import MMExtError, run_cli
from mmext.utils.cli import nonnegative_int, output_dir, positive_int


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', '--out', dest='out', type=output_dir,
                        required=True, help='output folder (--out: older form)')
    parser.add_argument('--seed', type=nonnegative_int, default=0, help='random seed')
    parser.add_argument('--num-labeled', type=positive_int, default=160)
    parser.add_argument('--num-unlabeled', type=nonnegative_int, default=320)
    parser.add_argument('--num-val', type=positive_int, default=80)
    parser.add_argument('--image-size', type=positive_int, default=128, help='pixels')
    args = parser.parse_args(argv)
    register_all_modules()
    # after registration: these import torch and mmdet
    from mmext.data.demo_dataset import make_demo_dataset
    if min(args.num_labeled, args.num_unlabeled, args.num_val) < 1 or args.image_size < 48:
        raise MMExtError('--num-* must be >= 1 and --image-size >= 48')
    files = make_demo_dataset(args.out, args.seed, args.num_labeled,
                              args.num_unlabeled, args.num_val, args.image_size)
    for split, path in files.items():
        print(f'{split:20s} {path}')
    return 0


if __name__ == '__main__':
    run_cli(main)
