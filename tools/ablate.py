#!/usr/bin/env python
"""One-change ablations of a config change: one config per changed group.

From BASE -> NEW, config_diff's groups (optimizer/LR schedule, loss,
anchors/assigner, augmentation, data/batch, semi-supervised thresholds,
other) each become one config: BASE plus only that group's changes
(_base_-ing BASE). OUT_DIR gets those configs, manifest.json (per arm: the
config, the keys it changes and the commands that train it with
tools/train.py, torchrun, mmdet's dist_train.sh and slurm_train.sh) and
train_all.sh. Launching stays with your scheduler; tools/compare_runs.py
then compares the work_dirs (its command is in the manifest).

Example:
    python tools/ablate.py configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo_focal-lower-thr.py \\
        --out-dir work_dirs/ablate_focal
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
from mmext.utils.cli import output_dir, positive_int


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('base', help='baseline config')
    parser.add_argument('new', help='config with all the changes')
    parser.add_argument('--out-dir', type=output_dir, required=True)
    parser.add_argument('--work-root', default='work_dirs/ablate',
                        help='where the commands put each run')
    parser.add_argument('--gpus', type=positive_int, default=2,
                        help='processes in the multi-process commands (2)')
    args = parser.parse_args(argv)
    register_all_modules()
    if args.gpus < 1:
        raise MMExtError(f'--gpus must be >= 1, got {args.gpus}')
    from mmext.experiments.ablation import write_ablation
    manifest = write_ablation(args.base, args.new, args.out_dir,
                              args.work_root, args.gpus)
    for arm in manifest['arms']:
        keys = ', '.join(arm['keys'][:4]) + (
            f' (+{len(arm["keys"]) - 4})' if len(arm['keys']) > 4 else '')
        print(f'{arm["name"]:28} {arm["config"]}\n{"":28} {keys or "-"}')
    print(f'\nwrote {args.out_dir}/manifest.json and train_all.sh; compare '
          f'with:\n  {manifest["compare"]}')
    return 0


if __name__ == '__main__':
    run_cli(main)
