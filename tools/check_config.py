#!/usr/bin/env python
"""Check an mmdet config for silent mismatches: losses vs heads, classes, anchors, thresholds.

Finds what trains without crashing but trains the wrong thing: a sigmoid-only
FocalLoss in a softmax R-CNN head, a sigmoid loss in a dense head without
use_sigmoid=True, num_classes that disagree with the dataset classes,
per-class loss lists of the wrong length, anchor ratios <= 0 or extreme,
pseudo-label thresholds outside [0, 1] or without effect.
Exit code 1 when there is an error, 0 otherwise (warnings only).

Example:
    python tools/check_config.py configs/focal/soft-teacher_faster-rcnn_tiny_demo_focal.py \\
        --json work_dirs/demo/check_config/focal.json
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
from mmext.utils import run_cli
from mmext.utils.cli import output_dir, output_file


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='mmdet config file')
    parser.add_argument('--out-dir', type=output_dir,
                        help='also write the findings to OUT_DIR/check_config.json')
    parser.add_argument('--json', type=output_file, metavar='PATH',
                        help='also write the findings to this JSON file '
                        '(older form of --out-dir)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    # after registration: these import torch and mmdet
    from mmext.checks.config_check import check_config, has_errors
    findings = check_config(args.config)
    rows = [f.to_dict() for f in findings]
    errors = sum(f.severity == 'error' for f in findings)
    warnings = len(findings) - errors
    print(f'config: {args.config}')
    if rows:
        print(format_table(rows, ['severity', 'check', 'key', 'message']))
    print(f'{errors} error(s), {warnings} warning(s)')
    content = {'config': args.config, 'errors': errors, 'warnings': warnings,
               'findings': rows}
    for path in filter(None, (args.json, args.out_dir and os.path.join(
            args.out_dir, 'check_config.json'))):
        write_json(content, path)
        print(f'wrote {path}')
    return 1 if has_errors(findings) else 0


if __name__ == '__main__':
    run_cli(main)
