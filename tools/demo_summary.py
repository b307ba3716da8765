#!/usr/bin/env python
"""Print where a demo run's log, metrics, checkpoint and plots are.

Example:
    python tools/demo_summary.py work_dirs/demo
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
from mmext.utils.tables import format_table
from mmext.utils import MMExtError, run_cli
from mmext.runs.validations import finite_or_none, read_metrics_json
from mmext.utils.run_summary import latest_checkpoint, run_files


def _ap(value) -> str:
    """An AP for print: 3 decimals, ``-`` where COCO has none (NaN, -1)."""
    value = finite_or_none(value)
    return '-' if value is None or value < 0 else f'{value:.3f}'


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', help='work_dir of the run')
    args = parser.parse_args(argv)
    register_all_modules()
    if not os.path.isdir(args.work_dir):
        raise MMExtError(f'{args.work_dir}: no such work_dir')
    print(f'\n=== mmext demo: results in {args.work_dir} ===')
    metrics_path = os.path.join(args.work_dir, 'eval', 'metrics.json')
    if os.path.isfile(metrics_path):
        # one reader of metrics files: an AP of `true` is an error, not 1.0
        metrics = read_metrics_json(metrics_path)
        print(f"val bbox mAP (teacher): {_ap(metrics.get('coco/bbox_mAP'))}   "
              f"mAP@0.5: {_ap(metrics.get('coco/bbox_mAP_50'))}")
        per_class = {k[5:-10]: _ap(v) for k, v in metrics.items()
                     if k.startswith('coco/') and k.endswith('_precision')}
        if per_class:
            print(format_table([dict(name=n, AP=ap) for n, ap in per_class.items()],
                               ['name', 'AP'], headers=['class', 'AP']))
            if '-' in per_class.values():
                print('AP -: the class has no box in the validation set')
    ckpt = latest_checkpoint(args.work_dir)
    print(f'checkpoint: {ckpt or "none"}')
    for kind, paths in run_files(args.work_dir).items():
        if not paths:
            continue
        print(f'{kind}:')
        for p in paths[:12]:
            print(f'  {p}')
        if len(paths) > 12:
            print(f'  ... and {len(paths) - 12} more')
    return 0


if __name__ == '__main__':
    run_cli(main)
