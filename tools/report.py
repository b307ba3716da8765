#!/usr/bin/env python
"""Write one self-contained HTML report of a training run.

Example:
    python tools/report.py work_dirs/demo
    python tools/report.py work_dirs/demo --out /tmp/run.html

Reads WORK_DIR/<timestamp>/vis_data/scalars.json and the log, and the files
of mmext's monitors (class_ap_history.json, anchor_match_stats.jsonl,
pseudo_label_stats.jsonl) when present. Writes WORK_DIR/report/report.html
(plots embedded as PNG) and report/warnings.json, and prints the loss
stability table and the warnings.
"""
import argparse
import json
import os
from typing import List, Optional

from mmext.analysis.report import format_table
from mmext.analysis.run_report import load_run, render_html, stability_table
from mmext.utils import run_cli


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', help='work_dir of a training run')
    parser.add_argument('--out', help='HTML file (default WORK_DIR/report/report.html)')
    parser.add_argument('--band-window', type=int, default=10,
                        help='logged points per rolling band of the loss plot')
    parser.add_argument('--cv-thr', type=float, default=0.03,
                        help='target coefficient of variation drawn on the plot')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    data = load_run(args.work_dir)
    out = args.out or os.path.join(args.work_dir, 'report', 'report.html')
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        f.write(render_html(data, args.band_window, args.cv_thr))
    warnings_path = os.path.join(os.path.dirname(os.path.abspath(out)), 'warnings.json')
    with open(warnings_path, 'w', encoding='utf-8') as f:
        json.dump(data.warnings, f, indent=1)
    rows = stability_table(data)
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
    print(f'\nreport: {out}\nwarnings: {warnings_path}')
    return 0


if __name__ == '__main__':
    run_cli(main)
