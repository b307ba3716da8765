#!/usr/bin/env python
"""Write mmext's synthetic defect dataset (COCO format).

Example:
    python tools/make_demo_dataset.py --out work_dirs/demo/data --seed 0
"""
import argparse
from typing import List, Optional

from mmext.data.demo_dataset import make_demo_dataset
from mmext.utils import MMExtError, run_cli


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--num-labeled', type=int, default=160)
    parser.add_argument('--num-unlabeled', type=int, default=320)
    parser.add_argument('--num-val', type=int, default=80)
    parser.add_argument('--image-size', type=int, default=128, help='pixels')
    args = parser.parse_args(argv)
    if min(args.num_labeled, args.num_unlabeled, args.num_val) < 1 or args.image_size < 48:
        raise MMExtError('--num-* must be >= 1 and --image-size >= 48')
    files = make_demo_dataset(args.out, args.seed, args.num_labeled,
                              args.num_unlabeled, args.num_val, args.image_size)
    for split, path in files.items():
        print(f'{split:20s} {path}')
    return 0


if __name__ == '__main__':
    run_cli(main)
