#!/usr/bin/env python
"""Train an mmdet config (mmdet's tools/train.py plus CPU multi-process).

Examples:
    python tools/train.py configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        --work-dir work_dirs/demo --data-root work_dirs/demo/data --max-iters 1200
    torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch
    python tools/train.py CONFIG --work-dir work_dirs/demo --resume   # latest checkpoint
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

from mmext.utils import run_cli
from mmext.utils.config import load_config
from mmext.utils.cli import output_dir, positive_int


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='mmdet config file')
    parser.add_argument('--work-dir', type=output_dir, help='output folder (default work_dirs/<config>)')
    parser.add_argument('--data-root', help='dataset folder for every dataset of the config')
    parser.add_argument('--max-iters', type=positive_int, help='rescale the iteration schedule')
    parser.add_argument('--resume', nargs='?', const='auto',
                        help='resume from CHECKPOINT, or the latest in work_dir')
    parser.add_argument('--load-from', help='initialise weights from a checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    # after registration: it imports torch and mmdet
    from mmext.engine import build_runner, close_process_group, prepare_config
    cfg = load_config(args.config, args.cfg_options, args.data_root)
    prepare_config(cfg, args.work_dir, None, args.max_iters,
                   args.launcher, args.resume, args.load_from)
    build_runner(cfg).train()
    close_process_group()  # after success only: a failed rank must not wait
    return 0


if __name__ == '__main__':
    run_cli(main)
