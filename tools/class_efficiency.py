#!/usr/bin/env python
"""Per-class efficiency: AP / share of training boxes, worst first.

AP per class comes from mmdet's CocoMetric (classwise=True): the metrics JSON
of tools/test.py (--metrics) and/or the last or best validation in a
work_dir's log (--work-dir; teacher and student for Soft Teacher). Box counts
come from the training annotations of --config (or --ann).

Example:
    python tools/class_efficiency.py \\
        --config configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        --data-root work_dirs/demo/data --work-dir work_dirs/demo \\
        --metrics work_dirs/demo/eval/metrics.json \\
        --out-dir work_dirs/demo/analysis/class_efficiency
Writes OUT_DIR/class_efficiency.{md,csv,json,png}.
"""
import argparse
import os
import sys
from typing import Dict, List, Optional

if 'mmext' not in sys.modules:
    # reads files only: skip registering mmext in mmdet (torch, seconds)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext.evaluation.class_efficiency import (DEFAULT_STATUS_THRESHOLDS,
                                              check_ap_values,
                                              check_status_thresholds,
                                             class_efficiency,
                                             count_ap_correlation,
                                             efficiency_cells)
from mmext.runs.validations import (classwise_ap, pick_validation,
                                           read_metrics_json,
                                           read_work_dir_validations)
from mmext.utils.tables import (format_markdown, format_table,
                                   skip_summary, write_csv, write_json)
from mmext.data import load_boxes, load_boxes_from_config
from mmext.utils import MMExtError, run_cli
from mmext.utils.config import load_config, set_data_root
from mmext.utils.cli import finite_float, output_dir

COLUMNS = ['source', 'class', 'boxes', 'share', 'ap', 'efficiency', 'status']
HEADERS = ['model', 'class', 'boxes', 'share', 'AP', 'efficiency', 'status']


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--metrics', action='append', default=[],
                        help='metrics JSON of tools/test.py (repeatable)')
    parser.add_argument('--work-dir', help='training work_dir: read its log')
    parser.add_argument('--pick', choices=['last', 'best'], default='last',
                        help='which validation of the log (last)')
    parser.add_argument('--config', help='mmdet config: training boxes')
    parser.add_argument('--ann', help='training annotations (COCO json or '
                        'VOC folder) instead of the config')
    parser.add_argument('--data-root', help="replaces the config's data root")
    parser.add_argument('--thresholds', type=finite_float, nargs=3,
                        default=list(DEFAULT_STATUS_THRESHOLDS),
                        metavar=('CRITICAL', 'WEAK', 'OK'),
                        help='efficiency limits between critical/weak/ok/'
                        'strong (0.25 0.75 1.25)')
    parser.add_argument('--out-dir', type=output_dir, help='folder for Markdown, CSV, JSON, PNG')
    return parser.parse_args(argv)


def _train_boxes(args: argparse.Namespace):
    if args.ann:
        classes = None
        if args.config:
            from mmext.utils.config import metainfo_classes, train_dataset_cfg
            classes = metainfo_classes(train_dataset_cfg(load_config(
                args.config)))
        return load_boxes(args.ann, class_names=classes)
    if not args.config:
        raise MMExtError('give the training annotations: --config or --ann')
    cfg = load_config(args.config)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    return load_boxes_from_config(cfg)


def _ap_sources(args: argparse.Namespace,
                classes) -> Dict[str, Dict[str, float]]:
    sources: Dict[str, Dict[str, float]] = {}
    for path in args.metrics:
        for model, ap in classwise_ap(read_metrics_json(path),
                                      classes).items():
            name = 'eval' if model == 'model' else f'eval {model}'
            check_ap_values(ap, f'{path} ({name})')
            sources[name] = ap
    if args.work_dir:
        try:
            records = read_work_dir_validations(args.work_dir)
        except MMExtError as exc:
            if not sources:
                raise
            # a short run may end before its first validation
            print(f'warning: {exc}; using --metrics only')
            return sources
        record = pick_validation(records, args.pick)
        step = record.get('step')
        at = f' @{int(step)}' if step is not None else ''
        for model, ap in classwise_ap(record, classes).items():
            sources[f'log {model}{at}'] = ap
    if not sources:
        raise MMExtError('no per-class AP found: give --metrics or --work-dir '
                         'of a run evaluated with CocoMetric(classwise=True)')
    return sources


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    boxes = _train_boxes(args)
    counts = boxes.class_counts()
    sources = _ap_sources(args, boxes.class_names)
    try:
        check_status_thresholds(args.thresholds)
    except ValueError as exc:
        raise MMExtError(f'--thresholds: {exc}') from None
    rows = []
    for source, ap in sources.items():
        rows.extend(class_efficiency(counts, ap, source, args.thresholds))
    if boxes.skipped:
        print(skip_summary(boxes.skip_counts(), 'annotation records'))
    cells = [efficiency_cells(r) for r in rows]
    print(format_table(cells, COLUMNS, HEADERS))
    correlations = {}
    for source in sources:
        rho = count_ap_correlation([r for r in rows if r['source'] == source])
        correlations[source] = rho
        print(f'{source}: Spearman(boxes, AP) = {rho:+.2f}'
              + ('  (the classes with the most data perform worst)'
                 if rho < 0 else ''))
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        out = os.path.join(args.out_dir, 'class_efficiency')
        with open(out + '.md', 'w', encoding='utf-8') as f:
            f.write(format_markdown(cells, COLUMNS, HEADERS) + '\n')
        write_csv(rows, out + '.csv', COLUMNS)
        write_json(dict(rows=rows, spearman_boxes_ap=correlations,
                        thresholds=args.thresholds,
                        skipped_annotations=boxes.skip_counts()),
                   out + '.json')
        from mmext.viz.analysis_plots import plot_class_efficiency
        plot_class_efficiency(rows, out + '.png')
        print(f'written: {out}.md, .csv, .json, .png')
    return 0


if __name__ == '__main__':
    run_cli(main)
