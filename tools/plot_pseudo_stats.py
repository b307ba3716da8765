#!/usr/bin/env python
"""Pseudo-label statistics of a Soft Teacher run: tables, thresholds, plots.

Reads WORK_DIR/pseudo_label_stats.jsonl (written by PseudoLabelStatsHook),
prints per class the kept ratio at each stage, precision/recall (when the
hook had ground truth) and the recommended score thresholds, from the last
--window records. Writes to OUT_DIR (default WORK_DIR/plot_pseudo_stats):
pseudo_stats.{csv,json}, pseudo_thresholds.{csv,json}, kept_ratio.png,
score_hist.png, thresholds.png (per-class thresholds in force over training)
and (with ground truth) precision.png.

--write-config OUT.py writes a config that _base_s the run's config
(WORK_DIR/*.py, or --config), switches to PerClassSoftTeacher and sets the
recommended per-class thresholds (--target precision or kept-ratio) for
--stages (rpn cls); a class whose initial threshold would hide them gets it
lowered 0.05 below. The thresholds are measured on the teacher of the
--window's iterations: by default (--warmup-iters auto) they take effect at
that iteration, the run's own thresholds before (a from-scratch teacher
scores every box near 1/(classes+1) and a low threshold from iteration 0
lets that noise in; measured: mAP 0.243 -> 0.003 on the demo).

Example:
    python tools/plot_pseudo_stats.py work_dirs/demo --window 5 \\
        --target-precision 0.7 --target-kept-ratio 0.3 \\
        --write-config work_dirs/demo/per_class_thr.py --target precision
"""
import argparse
import os
import sys
import os.path as osp
from typing import List, Optional

if 'mmext' not in sys.modules:
    # --help and argument errors answer before torch is imported: mmext is
    # registered in mmdet after the arguments are parsed (main)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext import register_all_modules  # noqa: E402
from mmext.utils.tables import format_table, write_csv, write_json
from mmext.runs.files import PSEUDO_LABEL_STATS
from mmext.runs.pseudo_records import (format_threshold, THRESHOLD_COLUMNS,
                                       format_recommendation, kept_ratio,
                                       precision, read_records, recall,
                                       recommend_thresholds, window_arrays,
                                       window_totals)
from mmext.utils import MMExtError, run_cli
from mmext.utils.cli import fraction, output_dir, output_file, positive_int


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', help='training work_dir (or the .jsonl)')
    parser.add_argument('--window', type=positive_int, default=5,
                        help='summarise the last this many records (5)')
    parser.add_argument('--target-precision', type=fraction, default=0.7,
                        help='precision the threshold must reach (0.7)')
    parser.add_argument('--target-kept-ratio', type=fraction, default=0.3,
                        help='fraction of raw teacher boxes to keep (0.3)')
    parser.add_argument('--out-dir', type=output_dir, help='default WORK_DIR/plot_pseudo_stats')
    parser.add_argument('--write-config', type=output_file, metavar='OUT.py',
                        help='write a per-class-threshold config here')
    parser.add_argument('--config', help="the run's config for "
                        '--write-config (default: the *.py in WORK_DIR)')
    parser.add_argument('--target', choices=('precision', 'kept-ratio'),
                        default='precision',
                        help='which recommendation --write-config uses '
                        '(precision; kept-ratio needs no ground truth)')
    parser.add_argument('--stages', nargs='+', choices=('rpn', 'cls'),
                        default=['rpn', 'cls'],
                        help='stages --write-config sets (rpn cls)')
    parser.add_argument('--warmup-iters', default='auto',
                        help='--write-config: keep the run\'s thresholds '
                        'until this iteration (auto: the first iteration of '
                        'the --window the thresholds come from; 0: from the '
                        'start, for a run resumed or fine-tuned from this '
                        'one)')
    args = parser.parse_args(argv)
    if args.warmup_iters != 'auto':
        try:
            args.warmup_iters = int(args.warmup_iters)
        except ValueError:
            args.warmup_iters = -1
        if args.warmup_iters < 0:
            raise MMExtError('--warmup-iters must be auto or an integer >= 0')
    if args.write_config and not args.write_config.endswith('.py'):
        raise MMExtError(f'{args.write_config}: --write-config must be a .py '
                         'file')
    if args.window < 1:
        raise MMExtError(f'--window must be >= 1, got {args.window}')
    for name in ('target_precision', 'target_kept_ratio'):
        if not 0 < getattr(args, name) <= 1:
            raise MMExtError(f'--{name.replace("_", "-")} must be in (0, 1]')
    return args


def stage_table(records: List[dict]) -> List[dict]:
    """Per class: raw boxes, kept ratio per stage, precision/recall (cls).

    Counts are summed over ``records`` before dividing.
    """
    totals = window_totals(records)
    rows = []
    for name in totals['classes'] + ['all']:
        raw = totals['counts']['raw'][name]
        row = {'class': name, 'raw': int(raw),
               'per_img': raw / max(1, totals['num_images'])}
        for stage in totals['stages'][1:]:
            row[f'kept_{stage}'] = kept_ratio(totals, stage, name)
        if 'tp' in records[-1]:
            for stage in ('raw', 'cls'):
                row[f'prec_{stage}'] = precision(totals, stage, name)
                row[f'rec_{stage}'] = recall(totals, stage, name)
        rows.append(row)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    path = args.work_dir
    if osp.isdir(path):
        path = osp.join(path, PSEUDO_LABEL_STATS)
    if not osp.isfile(path):
        raise MMExtError(f'{path}: no such file (is PseudoLabelStatsHook in '
                         'the custom_hooks of the run?)')
    skipped = {}
    records = read_records(path, skipped)
    if skipped:
        print(f'skipped {skipped[path]} record(s) of {path} with counts that '
              'are not numbers >= 0 (NaN, negative, missing classes)')
    out_dir = args.out_dir or osp.join(osp.dirname(path), 'plot_pseudo_stats')
    os.makedirs(out_dir, exist_ok=True)
    window = records[-args.window:]
    last = records[-1]

    rows = stage_table(window)
    columns = list(rows[0].keys())
    print(f'Pseudo labels, iterations {window[0]["first_iter"]}-'
          f'{last["iter"]} ({len(window)} records of {path}); thresholds '
          + ', '.join(f'{k} {format_threshold(v)}'
                      for k, v in last['thresholds'].items()
                      if k != 'min_pseudo_bbox_wh'))
    print(format_table(rows, columns))
    write_csv(rows, osp.join(out_dir, 'pseudo_stats.csv'), columns)
    write_json(rows, osp.join(out_dir, 'pseudo_stats.json'))

    arrays = window_arrays(window)
    recs = recommend_thresholds(
        arrays['hist'], arrays.get('tp_hist'), arrays.get('fp_hist'),
        arrays.get('num_gt'), last['classes'], args.target_precision,
        args.target_kept_ratio)
    print()
    print(format_recommendation(recs, args.target_precision,
                                args.target_kept_ratio))
    write_csv(recs, osp.join(out_dir, 'pseudo_thresholds.csv'),
              THRESHOLD_COLUMNS)
    write_json(recs, osp.join(out_dir, 'pseudo_thresholds.json'))

    if args.write_config:
        write_config(args, path, recs, window[0]['first_iter'])

    from mmext.viz.pseudo_plots import (plot_kept_ratio, plot_precision,
                                        plot_score_histograms,
                                        plot_thresholds)
    figures = {
        'thresholds.png': plot_thresholds(records),
        'kept_ratio.png': plot_kept_ratio(records,
                                          ('initial', 'rpn', 'cls', 'reg')),
        'score_hist.png': plot_score_histograms(
            arrays['hist'], last['classes'], last['thresholds'],
            arrays.get('tp_hist'), recs,
            title=f'raw teacher scores, iterations {window[0]["first_iter"]}'
            f'-{last["iter"]}'),
    }
    if 'precision' in last:
        figures['precision.png'] = plot_precision(records, 'cls')
    import matplotlib.pyplot as plt
    for name, fig in figures.items():
        fig.savefig(osp.join(out_dir, name), dpi=90)
        plt.close(fig)  # a caller in one process (tests, notebooks) reuses pyplot
        print(f'wrote {osp.join(out_dir, name)}')
    return 0


def write_config(args: argparse.Namespace, stats_path: str,
                 rows: List[dict], first_iter: int) -> None:
    """Write --write-config from the recommendation rows."""
    from mmext.experiments.pseudo_threshold_config import (
        TARGET_COLUMNS, recommendation_header,
        write_threshold_config)
    column = TARGET_COLUMNS[args.target]
    if all(r.get(column) is None for r in rows):
        raise MMExtError(f'{stats_path}: no class has a {args.target} '
                         'recommendation (precision needs gt_ann_file in '
                         'PseudoLabelStatsHook); try --target kept-ratio')
    from mmext.runs import find_run_config
    cfg_path = args.config or find_run_config(osp.dirname(stats_path))
    warmup = first_iter if args.warmup_iters == 'auto' else args.warmup_iters
    header = recommendation_header(rows, args.target, stats_path)
    header += (f'\nApplied from iteration {warmup} (the teacher they were '
               'measured on); the run\'s own thresholds before.'
               if warmup else '\nApplied from the start (resume or '
               'fine-tune from the measured run).')
    out = write_threshold_config(cfg_path, args.write_config, rows,
                                 args.target, args.stages, header=header,
                                 warmup_iters=warmup)
    print(f'wrote {out} (_base_: {cfg_path}; {args.target} target, stages '
          f'{" ".join(args.stages)}, from iteration {warmup})')


if __name__ == '__main__':
    run_cli(main)
