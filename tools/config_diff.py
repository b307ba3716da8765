#!/usr/bin/env python
"""Diff two configs (.py/.yaml/.json), group the changes, flag risky ones.

Groups: optimizer/LR schedule, loss, anchors/assigner, augmentation,
data/batch, semi-supervised thresholds, other. Pipelines (lists of dicts with
a `type`: transforms, hooks, schedulers) are aligned on the types, so an
inserted transform is one row ("PhotoMetricDistortion inserted after
RandomFlip") and a kept one shows its parameters
(`train_pipeline[RandomFlip].prob`). A copy of a top-level variable
(`train_dataloader.dataset.pipeline` of `train_pipeline`) is listed once,
under the variable. Risk rules: focal loss on or retuned; batch size without
the linear-scaling LR change; weight decay up while LR down; loss weights
rebalanced; several groups at once; pseudo thresholds changed with the loss;
a changed anchor count (RPN weights no longer load); an LR jump of 3x or more;
a changed YOLO imgsz; a variable changed while a copy of it kept the old value.

Example:
    python tools/config_diff.py configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo_focal-lower-thr.py \\
        --out work_dirs/demo/analysis/config_diff.json --fail-on high
    python tools/config_diff.py trial2_hyp.yaml trial3_hyp.yaml --json
Exit code 1 when a rule at or above --fail-on fires.
"""
import argparse
import json
import os
import sys
from typing import List, Optional

if 'mmext' not in sys.modules:
    # reads files only: skip registering mmext in mmdet (torch, seconds)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext.experiments.config_diff import GROUPS, SEVERITIES, diff_configs
from mmext.utils.tables import format_table, write_json
from mmext.utils import run_cli
from mmext.utils.cli import output_dir, output_file


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('a', help='baseline config')
    parser.add_argument('b', help='changed config')
    parser.add_argument('--json', action='store_true',
                        help='print JSON instead of tables')
    parser.add_argument('--out-dir', type=output_dir,
                        help='also write the JSON to OUT_DIR/config_diff.json')
    parser.add_argument('--out', type=output_file, help='also write the JSON '
                        'to this file (older form of --out-dir)')
    parser.add_argument('--fail-on', choices=SEVERITIES,
                        help='exit 1 when a rule of this severity or higher '
                        'fires')
    return parser.parse_args(argv)


def _value(v) -> str:
    return '-' if v is None else json.dumps(v) if isinstance(
        v, (list, dict)) else str(v)


def _print_tables(diff) -> None:
    rows = []
    for group in GROUPS:
        for c in diff.changes:
            if c.group == group:
                rows.append(dict(group=group, key=c.key,
                                 a=_value(c.before), b=_value(c.after),
                                 kind=c.note or c.kind))
    n = len(diff.changes)
    print(f'{n} change{"" if n == 1 else "s"} between {diff.a} and {diff.b}')
    if rows:
        print(format_table(rows, ['group', 'key', 'a', 'b', 'kind'],
                           ['group', 'key', 'A', 'B', 'change']))
    for al in diff.aliases:
        print(f'{al.key}: same as {al.same_as} in both configs (its changes '
              f'are listed once, under {al.same_as})')
    print()
    if not diff.risks:
        print('no risk rule fired')
        return
    print(format_table([dict(severity=r.severity, rule=r.rule,
                             reason=r.reason) for r in diff.risks],
                       ['severity', 'rule', 'reason']))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    diff = diff_configs(args.a, args.b)
    if args.json:
        print(json.dumps(diff.to_dict(), indent=2, default=str))
    else:
        _print_tables(diff)
    for path in filter(None, (args.out, args.out_dir and os.path.join(
            args.out_dir, 'config_diff.json'))):
        write_json(json.loads(json.dumps(diff.to_dict(), default=str)), path)
    return 1 if args.fail_on and diff.fires(args.fail_on) else 0


if __name__ == '__main__':
    run_cli(main)
