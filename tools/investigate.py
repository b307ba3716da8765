"""Investigate a training run: findings first, then one change at a time.

Reads what WORK_DIR holds (the config mmengine dumped there, validations,
pseudo_label_stats.jsonl, anchor_match_stats.jsonl, loss_stability.jsonl, the
log's warnings, WORK_DIR/eval/predictions.pkl or --predictions), runs every
analysis those inputs allow (config check, per-class AP, pseudo labels per
stage, anchor matching, loss stability, error breakdown, threshold sweep,
class efficiency), applies the rules of mmext.investigation.findings and writes

    OUT_DIR/report.md        the problem in numbers, findings ranked by
                             strength of evidence and expected AP impact,
                             likely root causes, actions, what to monitor
    OUT_DIR/findings.json    the same, machine-readable
    OUT_DIR/actions/*.py     one config per action (calibrated pseudo
                             thresholds, supervised burn-in, anchor ratios,
                             ...) and 00_control.py, the control on the
                             same random stream

Pseudo-label advice is gated on the teacher's measured competence: its
precision on the labeled validation set (predictions, or the
TeacherCompetenceHook's teacher_competence.jsonl). A class whose precision
never reaches --precision-target is reported as not yet detectable, with
supervised-side actions, never a lower threshold. Every action shows what
mmext's own benchmarks measured it to do, and an action measured to hurt is
ranked last and says so.

OUT_DIR defaults to WORK_DIR/investigation; tools/report.py WORK_DIR puts
the findings at the top of the HTML run report. What could not run is listed
with the reason.

Example:
    python tools/investigate.py work_dirs/demo --data-root work_dirs/demo/data
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
from mmext.investigation.investigate import (DEFAULT_DEPLOY_THR, Context,
                                          investigate)
from mmext.utils import MMExtError, run_cli
from mmext.utils.cli import fraction, output_dir


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', help='training work_dir')
    parser.add_argument('--config', help="the run's config (default: the "
                        'newest *.py mmengine dumped into WORK_DIR)')
    parser.add_argument('--predictions', help='tools/test.py --out pickle or '
                        'COCO results json on the validation set (default: '
                        'WORK_DIR/eval/predictions.pkl if present)')
    parser.add_argument('--gt', help='ground-truth COCO json of the '
                        "predictions (default: the config's val set)")
    parser.add_argument('--img-dir', help="folder of the ground truth's "
                        "images, for the gallery (default: the config's val "
                        'images)')
    parser.add_argument('--data-root', help="replaces the config's data root")
    parser.add_argument('--deploy-thr', type=fraction, default=DEFAULT_DEPLOY_THR,
                        help='score threshold the detector is deployed at '
                        f'({DEFAULT_DEPLOY_THR}, mmdet DetInferencer default)')
    parser.add_argument('--no-anchor-search', action='store_true',
                        help="do not run anchor_fit's search for the anchor "
                        'action (it reads the labeled train boxes)')
    parser.add_argument('--precision-target', type=fraction, default=0.5,
                        help="teacher validation precision (as a one-sided "
                        "lower confidence bound) at which a class's pseudo "
                        'threshold may be calibrated; a class below it is '
                        'reported as not yet detectable (0.5)')
    parser.add_argument('--confidence', type=fraction, default=0.9,
                        help='confidence of that Wilson bound (0.9)')
    parser.add_argument('--out-dir', type=output_dir, help='default WORK_DIR/investigation')
    args = parser.parse_args(argv)
    if not 0.5 <= args.confidence < 1:
        raise MMExtError(f'--confidence must be in [0.5, 1), got '
                         f'{args.confidence}')
    if not 0 <= args.deploy_thr <= 1:
        raise MMExtError(f'--deploy-thr must be in [0, 1], got '
                         f'{args.deploy_thr}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    register_all_modules()
    ctx = Context(work_dir=args.work_dir,
                  out_dir=args.out_dir or osp.join(args.work_dir,
                                                   'investigation'),
                  config_path=args.config, data_root=args.data_root,
                  predictions=args.predictions, gt=args.gt,
                  img_dir=args.img_dir,
                  deploy_thr=args.deploy_thr,
                  anchor_search=not args.no_anchor_search,
                  precision_target=args.precision_target,
                  confidence=args.confidence)
    content = investigate(ctx)
    print()
    print(content['report'])
    print(f'written: {osp.join(ctx.out_dir, "report.md")}, findings.json'
          + (f', {len(content["actions"])} action(s) under '
             f'{osp.join(ctx.out_dir, "actions")}' if content['actions']
             else ''))
    return 0


if __name__ == '__main__':
    run_cli(main)
