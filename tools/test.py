#!/usr/bin/env python
"""Evaluate a checkpoint on a config's test set; write metrics and predictions.

Example:
    python tools/test.py configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        work_dirs/demo/iter_1200.pth --work-dir work_dirs/demo/eval \\
        --data-root work_dirs/demo/data --out work_dirs/demo/eval/predictions.pkl
Writes WORK_DIR/metrics.json (every metric, classwise AP included).
"""
import argparse
import json
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
from mmext.utils.cli import output_dir, output_file


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='mmdet config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', type=output_dir, help='output folder')
    parser.add_argument('--data-root', help='dataset folder for every dataset of the config')
    parser.add_argument('--out', type=output_file, help='dump predictions to this .pkl (mmdet format)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    return parser.parse_args(argv)


def check_checkpoint_matches(runner, checkpoint: str, config: str) -> None:
    """Load ``checkpoint`` strictly, so that keys that do not match the model
    are an error instead of a random-weight model scored at mAP 0.0.

    Raises:
        MMExtError: missing or unexpected keys (mmengine's message,
            shortened to one line).
    """
    from mmext.compat import mark_weights_loaded  # imports torch
    try:
        runner.load_checkpoint(checkpoint, map_location='cpu', strict=True)
    except RuntimeError as exc:
        text = str(exc)
        if 'state_dict' not in text and 'size mismatch' not in text:
            raise
        first = ' '.join(text.split())[:200]
        raise MMExtError(f'{checkpoint}: does not match the model of '
                         f'{config} ({first})') from None
    # the weights are in: mmengine's test() must not load them again
    mark_weights_loaded(runner)


def raise_if_unreadable_image(error: BaseException, runner) -> None:
    """A corrupt image of the test set is bad input (exit 2, its name), not
    a crash of the tool."""
    from mmext.data.image_errors import unreadable_image

    def paths():
        dataset = runner.test_dataloader.dataset
        for i in range(len(dataset)):
            yield dataset.get_data_info(i)['img_path']
    bad = unreadable_image(error, paths())
    if bad is not None:
        raise MMExtError(f'{bad}: cannot be read as an image (corrupt, empty '
                         'or not an image): replace it or leave it out of the '
                         'annotations') from None


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    # after registration: these import torch and mmdet
    from mmext.engine import (build_runner, close_process_group, drop_train_only_hooks,
                              prepare_config)
    if not os.path.isfile(args.checkpoint):
        raise MMExtError(f'{args.checkpoint}: no such checkpoint')
    cfg = load_config(args.config, args.cfg_options, args.data_root)
    prepare_config(cfg, args.work_dir, launcher=args.launcher,
                   load_from=args.checkpoint)
    for name in drop_train_only_hooks(cfg):
        print(f'{name}: left out, it acts on training only (evaluation does not train)')
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise MMExtError(f'{args.out}: --out must be a .pkl file')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
    runner = build_runner(cfg)
    check_checkpoint_matches(runner, args.checkpoint, args.config)
    try:
        metrics = runner.test()
    except Exception as exc:  # noqa: BLE001 - only image failures are ours
        raise_if_unreadable_image(exc, runner)
        raise
    close_process_group()  # after success only: a failed rank must not wait
    path = os.path.join(cfg.work_dir, 'metrics.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({k: (v if isinstance(v, (int, float, str)) else str(v))
                   for k, v in metrics.items()}, f, indent=2)
    print(f'metrics: {path}')
    return 0


if __name__ == '__main__':
    run_cli(main)
