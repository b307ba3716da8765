#!/usr/bin/env python
"""Exact RPN anchor coverage per class, and K ratios that cover the boxes better.

Boxes are resized exactly as the train pipeline's Resize/RandomResize would
(random ranges: at both ends and the middle); for every GT the max IoU over
all anchors mmdet places on the padded image, the anchors with IoU >=
pos_iou_thr and the anchors MaxIoUAssigner assigns are computed exactly.
ratio = h/w (mmdet convention).

Examples:
    python tools/anchor_fit.py configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py \\
        --data-root work_dirs/demo/data --out-dir work_dirs/demo/anchor_fit
    python tools/anchor_fit.py --voc-dir ../shared/data/neu-det/ANNOTATIONS \\
        --scale 1333 800 --ratios 0.5 1 2 --num-ratios 5 --objective worst \\
        --out-dir work_dirs/neu_anchor_fit
    python tools/anchor_fit.py --ann datasets/defects/data.yaml --scale 640 640 \\
        --out-dir work_dirs/yolo_anchor_fit
Writes OUT_DIR/anchor_fit.json, box_stats.csv, coverage.csv, ratio_hist.png,
coverage.png and, when the change is worth a training run (objective +0.02
or the worst class's boxes without a positive anchor -5 points),
anchors_<objective>_k<K>.py: with a config, a config that _base_s it and
overrides only the RPN anchor generator; without, an anchor_generator
snippet. Otherwise it says "no change recommended" and writes no config.
Without a config the training scale is asked for (--scale or
--original-size).
"""
import argparse
import os
import sys
from typing import List, Optional

import numpy as np

if 'mmext' not in sys.modules:
    # reads files only: skip registering mmext in mmdet (torch, seconds)
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext.utils.tables import format_table, write_csv, write_json
from mmext.anchors import RATIO_NOTE, OBJECTIVES, fit_anchors, load_fit_inputs
from mmext.anchors.config_writer import write_anchor_config, write_anchor_snippet
from mmext.utils import MMExtError, run_cli
from mmext.utils.cli import (fraction, iou_threshold, nonnegative_int,
                            output_dir, positive_float, positive_int)

STAT_COLUMNS = ['name', 'count', 'share', 'w_p50', 'h_p50', 'area_p50', 'r_p5',
                'r_p25', 'r_p50', 'r_p75', 'r_p95', 'below_min', 'above_max']
COV_COLUMNS = ['name', 'count', 'share_pos', 'share_min_pos',
               'share_low_quality_only', 'share_none', 'mean_max_iou',
               'mean_pos_per_gt', 'mean_assigned_per_gt']


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='mmdet config (train data, '
                        'resize, rpn_head.anchor_generator, train_cfg.rpn.assigner)')
    parser.add_argument('--data-root', help="replaces the config's data root")
    parser.add_argument('--ann', help='COCO json or YOLO data.yaml (its train split; '
                        'data.yaml:val for another) instead of a config')
    parser.add_argument('--voc-dir', help='VOC annotation folder (instead of a config)')
    parser.add_argument('--img-dir', help='VOC image folder')
    parser.add_argument('--scale', type=positive_int, nargs=2, metavar=('W', 'H'),
                        help='fixed train scale (keep_ratio); default: the config '
                        'resize, or the original size')
    parser.add_argument('--original-size', action='store_true',
                        help='measure at the original image size (without a '
                        'config, --scale or this is required: mmdet resizes '
                        'the boxes before the anchors see them)')
    parser.add_argument('--no-keep-ratio', action='store_true',
                        help='--scale resizes to exactly W x H')
    parser.add_argument('--strides', type=positive_float, nargs='+', help='anchor strides (px)')
    parser.add_argument('--ratios', type=positive_float, nargs='+', help='anchor ratios h/w')
    parser.add_argument('--scales', type=positive_float, nargs='+', help='anchor scales')
    parser.add_argument('--pos-iou-thr', type=iou_threshold, help='assigner pos_iou_thr')
    parser.add_argument('--min-pos-iou', type=fraction, help='assigner min_pos_iou')
    parser.add_argument('--pad-divisor', type=positive_int, help='pad_size_divisor (px)')
    parser.add_argument('--num-ratios', type=nonnegative_int, help='K ratios to recommend '
                        '(default: the current number; 0: no search)')
    parser.add_argument('--objective', choices=OBJECTIVES, default='box',
                        help='box-weighted mean, class-balanced mean or worst class')
    parser.add_argument('--search-scales', action='store_true',
                        help='also search the anchor scales (same count)')
    parser.add_argument('--search-boxes', type=positive_int, default=20000,
                        help='subsample size for the search (20000)')
    parser.add_argument('--seed', type=nonnegative_int, default=0, help='subsample seed')
    parser.add_argument('--out-dir', type=output_dir, help='folder for JSON, CSV, PNG and the config')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    parser.add_argument('--gallery', type=nonnegative_int, default=0, metavar='K',
                        help='draw, per class, the K GT boxes without a positive '
                        'anchor with their best anchor, into OUT_DIR/'
                        'no_positive_anchor/ (needs --out-dir; images from '
                        "--img-dir or the config's train set)")
    args = parser.parse_args(argv)
    return args


def _stat_rows(stats: List[dict], ratios) -> List[dict]:
    lo, hi = f'{min(ratios):g}', f'{max(ratios):g}'
    rows = []
    for s in stats:
        r = s['ratio_h_over_w']
        rows.append(dict(name=s['name'], count=s['count'], share=s['share'],
                         w_p50=s['width']['p50'], h_p50=s['height']['p50'],
                         area_p50=s['area']['p50'], r_p5=r['p5'], r_p25=r['p25'],
                         r_p50=r['p50'], r_p75=r['p75'], r_p95=r['p95'],
                         below_min=s['share_below'][lo], above_max=s['share_above'][hi]))
    return rows


#: Coverage columns shown on screen: (key, short header).
COV_SHORT = [('share_pos', 'pos'), ('share_min_pos', 'minpos'),
             ('share_low_quality_only', 'lq'), ('share_none', 'none'),
             ('mean_max_iou', 'IoU'), ('mean_pos_per_gt', 'pos/GT'),
             ('mean_assigned_per_gt', 'asg/GT')]


def _coverage_table(cur: List[dict], new: Optional[List[dict]]):
    """Rows, columns and headers: each metric current, then recommended."""
    rows, columns, headers = [], ['name', 'count'], ['class', 'count']
    for key, short in COV_SHORT:
        columns.append(key)
        headers.append(short if new is None else f'{short} cur')
        if new is not None:
            columns.append(key + '_new')
            headers.append(f'{short} new')
    for k, row in enumerate(cur):
        merged = dict(row)
        if new is not None:
            merged.update({f'{key}_new': new[k].get(key) for key, _ in COV_SHORT})
        rows.append(merged)
    return rows, columns, headers


def _print_report(res: dict, spec_ratios) -> None:
    print(f"anchor_fit: {res['source']} ({res['num_boxes']} boxes, "
          f"{res['num_images']} images)")
    gen = res['anchors']['generator']
    print(f"anchors: strides {[s[0] for s in gen['strides']]}, ratios {gen['ratios']}, "
          f"scales {gen.get('scales')}; pos_iou_thr {res['anchors']['pos_iou_thr']}, "
          f"min_pos_iou {res['anchors']['min_pos_iou']}, pad to "
          f"{res['anchors']['pad_size_divisor']}")
    print(f"train scales: {', '.join(res['train_scales'])}")
    print(f'note: {RATIO_NOTE}')
    print('\nwarnings:' if res['warnings'] else '\nwarnings: none')
    for reason, n in sorted(res['warnings'].items()):
        print(f'  {n:7d}  {reason}')
    for scale, stats in res['box_stats'].items():
        print(f'\nbox statistics at train scale {scale} ({RATIO_NOTE}; sizes in px; '
              f'below/above = share of boxes outside the anchor ratios)')
        print(format_table(_stat_rows(stats, spec_ratios), STAT_COLUMNS, digits=2))
    rec = res.get('recommendation')
    for scale, cur in res['coverage']['current'].items():
        new = res['coverage']['recommended'][scale] if rec else None
        what = f"current -> recommended ratios {rec['ratios']}" if rec else 'current anchors'
        print(f'\ncoverage at train scale {scale}, {what}')
        print(format_table(*_coverage_table(cur, new)))
    thr = res['anchors']
    print(f"\npos: share of GTs with max IoU >= {thr['pos_iou_thr']} (pos_iou_thr); "
          f"minpos: >= {thr['min_pos_iou']} (min_pos_iou); lq: positive only through "
          'the low-quality match;\nnone: no anchor assigned; IoU: mean max IoU; '
          'pos/GT: anchors with IoU >= pos_iou_thr; asg/GT: anchors MaxIoUAssigner '
          'assigns to the GT')
    if rec:
        obj = rec['objective_all_boxes']
        print(f"\nrecommended ratios ({RATIO_NOTE}): {rec['ratios']}  scales: {rec['scales']}")
        print(f"objective '{rec['objective']}' on all boxes: current {obj['current']:.4f} "
              f"-> recommended {obj['recommended']:.4f}")
        print(f"verdict: {rec['verdict']}")


def _write_outputs(res: dict, args, inputs) -> List[str]:
    out = args.out_dir
    written = [write_json(res, os.path.join(out, 'anchor_fit.json'))]
    spec = inputs.spec
    stat_rows = [dict(scale=s, **r) for s, st in res['box_stats'].items()
                 for r in _stat_rows(st, spec.ratios)]
    written.append(write_csv(stat_rows, os.path.join(out, 'box_stats.csv')))
    cov_rows = [dict(anchors=which, scale=s, **r)
                for which, per in res['coverage'].items()
                for s, rows in per.items() for r in rows]
    written.append(write_csv(cov_rows, os.path.join(out, 'coverage.csv'),
                             ['anchors', 'scale'] + COV_COLUMNS))
    written += _write_plots(res, inputs, out)
    rec = res.get('recommendation')
    if rec and rec['worth_a_run']:
        name = f"anchors_{rec['objective']}_k{rec['num_ratios']}.py"
        obj = rec['objective_all_boxes']
        header = (f"Written by tools/anchor_fit.py: RPN anchor ratios (h/w) chosen for "
                  f"objective '{rec['objective']}'\n(current {obj['current']:.4f} -> "
                  f"{obj['recommended']:.4f} on {res['num_boxes']} boxes). "
                  'Only the anchor generator changes.')
        scales = rec['scales'] if rec['search_scales'] else None
        if inputs.config_path:
            written.append(write_anchor_config(inputs.config_path, os.path.join(out, name),
                                               rec['ratios'], scales, header))
        else:
            gen = spec.replace(ratios=rec['ratios'], scales=rec['scales']).generator_cfg()
            written.append(write_anchor_snippet(os.path.join(out, name), gen))
    return written


def _write_plots(res: dict, inputs, out: str) -> List[str]:
    from mmext.viz.anchor_plots import (plot_coverage_before_after,
                                        plot_ratio_histograms)
    table = inputs.table.select(~inputs.table.ignore)
    ratios = {n: table.ratio_h_over_w[table.label == k]
              for k, n in enumerate(table.class_names)}
    rec = res.get('recommendation')
    paths = [plot_ratio_histograms(ratios, inputs.spec.ratios,
                                   rec['ratios'] if rec else None,
                                   os.path.join(out, 'ratio_hist.png'))]
    names = list(table.class_names)
    thr = res['anchors']['pos_iou_thr']

    def per_class(which):
        scales = res['coverage'][which]
        mean = lambda key: list(np.mean(  # noqa: E731
            [[r[key] for r in rows[:-1]] for rows in scales.values()], axis=0))
        return {f'share of GTs with max IoU >= {thr} (mean over train scales)':
                mean('share_pos'),
                'anchors assigned per GT (mean over train scales)':
                mean('mean_assigned_per_gt')}

    paths.append(plot_coverage_before_after(
        names, per_class('current'), per_class('recommended') if rec else None,
        os.path.join(out, 'coverage.png')))
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.ann and args.voc_dir:
        raise MMExtError('give --ann or --voc-dir, not both')
    if args.scale and args.original_size:
        raise MMExtError('give --scale or --original-size, not both')
    inputs = load_fit_inputs(
        config=args.config, data_root=args.data_root, ann=args.ann or args.voc_dir,
        img_dir=args.img_dir, scale=args.scale, keep_ratio=not args.no_keep_ratio,
        strides=args.strides, ratios=args.ratios, scales=args.scales,
        pos_iou_thr=args.pos_iou_thr, min_pos_iou=args.min_pos_iou,
        pad_divisor=args.pad_divisor)
    if not args.config and not args.scale and not args.original_size:
        raise MMExtError(
            f'{args.ann or args.voc_dir}: give the training scale, --scale W '
            'H (e.g. 1333 800 for mmdet\'s Faster R-CNN), or --original-size: '
            'without a config anchor_fit cannot know how the boxes are '
            'resized before they meet the anchors')
    res = fit_anchors(inputs, args.num_ratios, args.objective, args.search_scales,
                      args.search_boxes, progress=not args.no_progress, seed=args.seed)
    _print_report(res, inputs.spec.ratios)
    if args.gallery and not args.out_dir:
        raise MMExtError('--gallery needs --out-dir')
    if args.out_dir:
        written = _write_outputs(res, args, inputs)
        print('\nwritten:\n' + '\n'.join(f'  {p}' for p in written))
    if args.gallery:
        _write_gallery(args, inputs)
    return 0


def _write_gallery(args, inputs) -> None:
    """The GT boxes without a positive anchor, drawn at the middle train
    scale with their best anchor (mmext.viz.anchor_gallery)."""
    from mmext.anchors.coverage import anchor_coverage
    from mmext.anchors.train_scale import scale_boxes
    from mmext.utils.config import dataset_img_dir, load_config, set_data_root
    from mmext.utils.config import iter_leaf_datasets, train_dataset_cfg
    from mmext.viz.anchor_gallery import write_anchor_gallery
    img_dir = args.img_dir
    if not img_dir and args.config:
        cfg = load_config(args.config)
        if args.data_root:
            set_data_root(cfg, args.data_root)
        img_dir = dataset_img_dir(next(iter_leaf_datasets(
            train_dataset_cfg(cfg))))
    if not img_dir:
        raise MMExtError('--gallery without a config needs --img-dir (the '
                         "folder of the annotations' images)")
    table = inputs.table.select(~inputs.table.ignore)
    rule = inputs.rules[len(inputs.rules) // 2]
    scaled = scale_boxes(table, rule, inputs.spec.pad_size_divisor)
    coverage = anchor_coverage(scaled, inputs.spec, with_assigned=False)
    out = write_anchor_gallery(table, scaled, inputs.spec, coverage, img_dir,
                               os.path.join(args.out_dir, 'no_positive_anchor'),
                               args.gallery)
    if out['unreadable']:
        print(f'gallery: {len(out["unreadable"])} image(s) could not be read, '
              f'e.g. {out["unreadable"][0]}')
    print(f'gallery: {out["cases"]} GT boxes without a positive anchor (train '
          f'scale {rule.name}) in {len(out["images"])} images under '
          f'{os.path.join(args.out_dir, "no_positive_anchor")}')


if __name__ == '__main__':
    run_cli(main)
