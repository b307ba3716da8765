#!/usr/bin/env python
"""Write one self-contained HTML report of a training run.

Example:
    python tools/report.py work_dirs/demo
    python tools/report.py work_dirs/demo --out /tmp/run.html

Reads WORK_DIR/<timestamp>/vis_data/scalars.json and the log, and the files
of mmext's monitors (class_ap_history.json, anchor_match_stats.jsonl,
pseudo_label_stats.jsonl, loss_stability.jsonl) and
WORK_DIR/investigation/findings.json (tools/investigate.py: the report then
opens with the findings) when present. Writes WORK_DIR/report/report.html
(plots embedded as PNG), report/warnings.json and report/stability.csv, and
prints the loss stability table and the warnings.
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
from mmext.utils.tables import format_table, write_csv, write_json
from mmext.investigation.run_report import (load_run, loss_series,
                                            missing_losses_note,
                                            stability_table, write_report)
from mmext.utils import run_cli
from mmext.utils.cli import output_dir, output_file, positive_float, positive_int


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', help='work_dir of a training run')
    parser.add_argument('--out-dir', type=output_dir,
                        help='folder for report.html, warnings.json and '
                        'stability.csv (default WORK_DIR/report)')
    parser.add_argument('--out', type=output_file, help='HTML file (older form '
                        'of --out-dir; its folder gets the other files)')
    parser.add_argument('--investigation', metavar='DIR',
                        help="tools/investigate.py's output folder when it was "
                        'written elsewhere (default WORK_DIR/investigation)')
    parser.add_argument('--band-window', type=positive_int, default=10,
                        help='logged points per rolling band of the loss plot')
    parser.add_argument('--cv-thr', type=positive_float, default=None,
                        help='a target coefficient of variation to draw on the '
                        'raw-CV plot (none by default)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    data = load_run(args.work_dir, args.investigation)
    out = args.out or (args.out_dir and os.path.join(args.out_dir, 'report.html'))
    out = write_report(data, out, args.band_window, args.cv_thr)
    out_dir = os.path.dirname(os.path.abspath(out))
    warnings_path = write_json(data.warnings, os.path.join(out_dir, 'warnings.json'))
    if not loss_series(data):
        print(missing_losses_note(data))
    rows = stability_table(data)
    write_csv(rows, os.path.join(out_dir, 'stability.csv'),
              ['loss', 'last', 'mean', 'std', 'cv'])
    if rows:
        print(format_table(rows, ['loss', 'last', 'mean', 'std', 'cv'],
                           ['loss', 'last', 'mean(last 10)', 'std(last 10)', 'CV (hook)'], 4))
    print(f'\n{len(data.warnings)} warnings')
    if data.warnings:
        # The message is free text: left-aligned last column, cut at 110 characters.
        print(f"{'time':19}  {'iter':>6}  message")
        for w in data.warnings[-20:]:
            it = '-' if w['iter'] is None else w['iter']
            print(f"{w['time']:19}  {it:>6}  {w['message'][:110]}")
    print(f'\nreport: {out}\nwarnings: {warnings_path}\nstability: {out_dir}/stability.csv')
    return 0


if __name__ == '__main__':
    run_cli(main)
