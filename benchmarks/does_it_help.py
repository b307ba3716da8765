#!/usr/bin/env python
"""Does each of mmext's fixes help? The user's seed-004 changes, one at a time.

Arms (``--arms``; the first is the control), each the stock config plus one
change in its correct mmext form:

- ``stock``: the demo (or NEU-DET held-out) Soft Teacher config;
- ``anchors``: RPN anchor ratios from ``tools/anchor_fit.py`` (worst-class
  objective, 3 ratios, the config it writes);
- ``focal``: ``SoftmaxFocalLoss`` (gamma 3.5, alpha 0.75, weight 2.5, the
  user's numbers) in the R-CNN head, the RPN unchanged;
- ``perclass``: per-class pseudo-label thresholds as a user gets them: the
  control run of the same seed is measured by ``tools/plot_pseudo_stats.py
  --write-config`` (precision target, applied from the iteration the
  recommendation was measured at); ``--perclass-form proportion`` uses the
  adaptive proportion policy instead;
- ``all``: the three together (anchors and focal on top of the perclass
  config);
- ``calibrated``: calibrated per-class thresholds (``PerClassSoftTeacher``
  with ``dict(type='calibrated')`` at the rpn and cls stages, precision
  target 0.5 at 90% confidence, ``TeacherCompetenceHook``), the stock
  thresholds until the first validation and for classes below the target;
- ``burnin``: ``SupervisedBurnInHook`` (unsupervised weight 0 for the first
  quarter of the budget, ramped back over the next twentieth);
- ``burnin_calibrated``: both, the calibration from the end of the burn-in;
- ``calibratedNN`` (e.g. ``calibrated70``): the calibrated arm with precision
  target 0.NN.

``--write-effects`` writes the comparison into mmext's measured-effects file
(``mmext/experiments/measured_effects.json``), which ``tools/investigate.py``
shows beside each action.

Every arm trains ``--seeds`` times (``randomness.seed``) for ``--iters``
iterations with tools/train.py, is evaluated with tools/test.py --out and
compared with tools/compare_runs.py (seeds paired, paired bootstrap over
validation images, the user's criteria as --expect). A run whose final
checkpoint exists is not trained again, and a run with checkpoints resumes:
run the script again to continue a benchmark across sessions.

Datasets: ``--dataset demo`` (work_dirs/demo/data, made if missing) or
``--dataset neu-det`` (../shared/data/neu-det, 10% of ANNOTATIONS/ labeled,
356 held-out images for validation: configs/neu_det/..._heldout.py).
``--find-budget MAP50`` trains only the control, validating every 200
iterations, and prints the first iteration whose teacher mAP50 reaches it.

Example:
    python benchmarks/does_it_help.py --dataset demo --seeds 0 1 --iters 400
    python benchmarks/does_it_help.py --dataset neu-det --find-budget 0.2 --iters 3000
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

from mmext.runs import files

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = {
    'demo': osp.join(ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py'),
    'neu-det': osp.join(ROOT, 'configs/neu_det/soft-teacher_faster-rcnn_tiny_neu-det_heldout.py'),
}
PROPORTION = ("dict(_delete_=True, type='proportion', warmup_thr=0.5, "
              "min_scores=20, update_interval=10, window_images=256, "
              "floor=0.15, ceiling=0.9)")
FOCAL = ("dict(_delete_=True, type='SoftmaxFocalLoss', gamma=3.5, "
         "alpha=0.75, loss_weight=2.5)")
#: A calibrated policy at a stage whose stock threshold is THR.
CALIBRATED = ("dict(_delete_=True, type='calibrated', warmup_thr={thr}, "
              "precision_target={target}, confidence=0.9, "
              "warmup_iters={start})")


def calibrated_target(arm: str):
    """The precision target of a calibrated arm (``calibrated70``: 0.7),
    or None for another arm."""
    if arm in ('calibrated', 'burnin_calibrated'):
        return 0.5
    digits = arm[len('calibrated'):] if arm.startswith('calibrated') else ''
    return int(digits) / 100 if digits.isdigit() else None
USER_EXPECT = ['Severe_Rust:ap>=0.03', 'Chipped:ap>=0.08', 'kept_ratio_cls:up',
               'no_pos_share:down', 'mAP:up']


def anchor_ratios(args, base: str) -> list:
    """Ratios anchor_fit recommends for the labeled train boxes."""
    out = osp.join(args.out, 'anchor_fit')
    result = osp.join(out, 'anchor_fit.json')
    if not osp.isfile(result):
        cmd = [sys.executable, 'tools/anchor_fit.py', base, '--num-ratios',
               '3', '--objective', 'worst', '--out-dir', out, '--no-progress']
        if args.data_root:
            cmd += ['--data-root', args.data_root]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    with open(result) as f:
        data = json.load(f)
    ratios = (data.get('recommendation') or {}).get('ratios')
    if not ratios:
        raise SystemExit(f'{result}: no recommended ratios')
    return [float(r) for r in ratios]


def recommended_thresholds(seed: int, args) -> str:
    """The per-class config plot_pseudo_stats writes from the control run:
    precision target where the hook had the unlabeled GT (the demo), else
    the kept-ratio target (NEU-DET's unlabeled parts have no GT json)."""
    path = osp.join(args.out, 'configs', f'perclass_s{seed}.py')
    if not osp.isfile(path):
        control = osp.join(args.out, f'{args.arms[0]}_s{seed}')
        for target in ('precision', 'kept-ratio'):
            cmd = [sys.executable, 'tools/plot_pseudo_stats.py', control,
                   '--config', CONFIGS[args.dataset], '--target', target,
                   '--write-config', path, '--out-dir',
                   osp.join(control, 'plot_pseudo_stats')]
            if subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                break
        else:
            raise SystemExit(f'{control}: plot_pseudo_stats wrote no '
                             'per-class config')
    return path


def arm_config(arm: str, seed: int, args) -> str:
    """Write the arm's config (stock + one change) under OUT/configs.

    Every arm, the control included, runs without the base's
    EarlyStoppingHook: arms are compared at one iteration budget.
    """
    base = CONFIGS[args.dataset]
    recommended = (arm in ('perclass', 'all')
                   and args.perclass_form == 'recommended')
    if recommended:
        base = recommended_thresholds(seed, args)
    parts = []
    if arm in ('anchors', 'all'):
        ratios = anchor_ratios(args, base)
        parts.append(f'model.detector.rpn_head.anchor_generator.ratios = {ratios!r}')
    if arm in ('focal', 'all'):
        parts.append(f'model.detector.roi_head.bbox_head.loss_cls = {FOCAL}')
    adaptive = arm in ('perclass', 'all') and not recommended
    if adaptive:
        parts.append("model.type = 'PerClassSoftTeacher'")
        parts.append('model.semi_train_cfg.pseudo_label_initial_score_thr = 0.15')
        parts.append(f'model.semi_train_cfg.rpn_pseudo_thr = {PROPORTION}')
        parts.append(f'model.semi_train_cfg.cls_pseudo_thr = {PROPORTION}')
    extra_hooks = []
    burn_in = args.iters // 4 if arm in ('burnin', 'burnin_calibrated') else 0
    if burn_in:
        extra_hooks.append(dict(type='SupervisedBurnInHook',
                                burn_in_iters=burn_in,
                                ramp_iters=args.iters // 20))
    target = calibrated_target(arm)
    if target is not None:
        from mmengine.config import Config
        semi = Config.fromfile(base).model.semi_train_cfg
        parts.append("model.type = 'PerClassSoftTeacher'")
        for key in ('rpn_pseudo_thr', 'cls_pseudo_thr'):
            parts.append(f'model.semi_train_cfg.{key} = ' + CALIBRATED.format(
                thr=float(semi[key]), start=burn_in, target=target))
        extra_hooks.append(dict(type='TeacherCompetenceHook'))
    if not parts and not extra_hooks and arm not in ('stock', 'perclass'):
        raise SystemExit(f'unknown arm {arm!r}')
    model = {}
    for line in parts:
        key, value = line.split(' = ', 1)
        node = model
        keys = key.split('.')[1:]
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    text = f'_base_ = [{base!r}]\n'
    text += 'custom_hooks = ' + _fixed_budget_hooks(
        base, adaptive or target is not None,
        extra_hooks) + '\n'
    if model:
        text += 'model = ' + _render(model) + '\n'
    path = osp.join(args.out, 'configs',
                    f'{arm}_s{seed}.py' if recommended else f'{arm}.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


def _fixed_budget_hooks(base: str, threshold_hook: bool,
                        extra_hooks: list = ()) -> str:
    """The base's custom hooks without EarlyStoppingHook (and with the
    adaptive thresholds' PseudoThresholdHook, and ``extra_hooks``); mmengine
    replaces lists."""
    import pprint
    from mmengine.config import Config
    hooks = [h for h in Config.fromfile(base).to_dict()['custom_hooks']
             if h.get('type') != 'EarlyStoppingHook']
    if threshold_hook:
        hooks.insert(1, dict(type='PseudoThresholdHook'))
    hooks += list(extra_hooks)
    return pprint.pformat(hooks, sort_dicts=False)


def _render(node) -> str:
    if isinstance(node, dict):
        return 'dict(' + ', '.join(f'{k}={_render(v)}' for k, v in
                                   node.items()) + ')'
    return node


def train(arm: str, seed: int, args, stop_when=None) -> str:
    """Train one arm and seed (resuming from its checkpoints).

    Args:
        stop_when: called with the work_dir every 20 s while training; a
            true result stops the run there (the budget search stops at
            the first validation that reaches the target).
    """
    work = osp.join(args.out, f'{arm}_s{seed}')
    if osp.isfile(osp.join(work, f'iter_{args.iters}.pth')):
        return work
    if stop_when is not None and stop_when(work):
        return work
    cmd = [sys.executable, 'tools/train.py', arm_config(arm, seed, args),
           '--work-dir', work, '--max-iters', str(args.iters),
           '--cfg-options', f'randomness.seed={seed}',
           f'train_cfg.val_interval={args.val_interval}']
    if args.data_root:
        cmd += ['--data-root', args.data_root]
    if osp.isdir(work) and any(f.endswith('.pth') for f in os.listdir(work)):
        cmd.append('--resume')
    print(f'[{arm} seed {seed}] {" ".join(cmd[1:])}', flush=True)
    start = time.time()
    run_logged(cmd, work + '.log', stop_when and (lambda: stop_when(work)))
    print(f'[{arm} seed {seed}] trained in {time.time() - start:.0f} s',
          flush=True)
    return work


def run_logged(cmd: list, log: str, stop_when=None) -> None:
    """Run a tool with its output in ``log``; a failure names the log.

    Args:
        stop_when: polled every 20 s; a true result terminates the tool
            (not a failure).
    """
    os.makedirs(osp.dirname(log), exist_ok=True)
    with open(log, 'a') as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT)
        while True:
            try:
                rc = proc.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                if stop_when is not None and stop_when():
                    proc.terminate()
                    proc.wait()
                    return
    if rc:
        raise SystemExit(f'{" ".join(cmd[1:3])} failed (exit {rc}): see {log}')


def predict(arm: str, seed: int, work: str, args) -> str:
    out = osp.join(work, files.PREDICTIONS)
    if not osp.isfile(out):
        cmd = [sys.executable, 'tools/test.py', arm_config(arm, seed, args),
               osp.join(work, f'iter_{args.iters}.pth'), '--work-dir',
               osp.join(work, 'eval'), '--out', out]
        if args.data_root:
            cmd += ['--data-root', args.data_root]
        run_logged(cmd, work + '.test.log')
    return out


def val_gt_json(args) -> str:
    """The validation set as COCO json (the demo has one; NEU-DET's split is
    written from the built val dataset, exactly the images evaluated)."""
    if args.dataset == 'demo':
        return osp.join(args.data_root, 'annotations', 'val.json')
    path = osp.join(args.out, 'val_gt.json')
    if osp.isfile(path):
        return path
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import mmext  # noqa: F401
    register_all_modules()
    cfg = Config.fromfile(CONFIGS[args.dataset]).val_dataloader.dataset
    cfg.pipeline = []
    ds = DATASETS.build(cfg)
    classes = ds.metainfo['classes']
    images, anns = [], []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        images.append(dict(id=info['img_id'], file_name=info['img_path'],
                           width=info['width'], height=info['height']))
        for inst in info['instances']:
            x1, y1, x2, y2 = inst['bbox']
            anns.append(dict(id=len(anns) + 1, image_id=info['img_id'],
                             category_id=inst['bbox_label'] + 1,
                             bbox=[x1, y1, x2 - x1, y2 - y1],
                             area=(x2 - x1) * (y2 - y1),
                             iscrowd=int(inst.get('ignore_flag', 0))))
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=[
            dict(id=k + 1, name=n) for k, n in enumerate(classes)]), f)
    return path


def write_effects(args, argv: list) -> None:
    """The comparison's regimes into mmext/experiments/measured_effects.json."""
    from mmext.experiments.measured_effects import (EFFECTS_FILE, merge_regimes,
                                                 regimes_from_compare)
    with open(osp.join(args.out, 'compare', 'compare.json')) as f:
        compare = json.load(f)
    command = 'python benchmarks/does_it_help.py ' + ' '.join(argv)
    regimes = regimes_from_compare(compare, args.dataset, args.iters,
                                   args.seeds, command)
    merge_regimes(regimes)
    print(f'wrote {len(regimes)} regime(s) into {EFFECTS_FILE}')


def find_budget(args) -> int:
    """Train the control once for --iters (its own folder under OUT) and
    report the first validation whose teacher mAP50 reaches the target."""
    from mmext.runs.validations import read_work_dir_validations
    from mmext.utils.errors import MMExtError
    args.out = osp.join(args.out, 'find_budget')

    def reached(work: str) -> bool:
        try:
            records = read_work_dir_validations(work)
        except MMExtError:  # no validation yet
            return False
        return any(r.get('teacher/coco/bbox_mAP_50', 0) >= args.find_budget
                   for r in records)

    work = train(args.arms[0], args.seeds[0], args, stop_when=reached)
    records = read_work_dir_validations(work)
    print('teacher mAP50 by iteration: ' + ', '.join(
        f'{int(r.get("step", 0))}: {r.get("teacher/coco/bbox_mAP_50", 0):.3f}'
        for r in records))
    for rec in records:
        if rec.get('teacher/coco/bbox_mAP_50', 0) >= args.find_budget:
            print(f'control reaches teacher mAP50 >= {args.find_budget} at '
                  f'iteration {int(rec.get("step", 0))} '
                  f'(mAP50 {rec["teacher/coco/bbox_mAP_50"]:.3f})')
            return 0
    print(f'control did not reach teacher mAP50 {args.find_budget} in '
          f'{args.iters} iterations')
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset', choices=sorted(CONFIGS), default='demo')
    parser.add_argument('--arms', nargs='+',
                        default=['stock', 'anchors', 'focal', 'perclass',
                                 'all'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--iters', type=int, default=800,
                        help='iteration budget per run (800)')
    parser.add_argument('--data-root', help='dataset folder (demo: '
                        'work_dirs/demo/data)')
    parser.add_argument('--out', help='default work_dirs/does_it_help_<dataset>')
    parser.add_argument('--perclass-form', choices=['recommended', 'proportion'],
                        default='recommended')
    parser.add_argument('--find-budget', type=float, metavar='MAP50')
    parser.add_argument('--val-interval', type=int, default=200,
                        help='validate every N iterations (200)')
    parser.add_argument('--write-effects', action='store_true',
                        help="write the comparison into mmext's "
                        'measured-effects file (investigate shows it)')
    args = parser.parse_args(argv)
    args.out = args.out or osp.join(ROOT, f'work_dirs/does_it_help_{args.dataset}')
    if args.dataset == 'demo':
        args.data_root = args.data_root or osp.join(ROOT, 'work_dirs/demo/data')
        if not osp.isdir(args.data_root):
            from mmext.data.demo_dataset import make_demo_dataset
            make_demo_dataset(args.data_root, seed=0)
    if args.find_budget is not None:
        return find_budget(args)
    start = time.time()
    works = {arm: [train(arm, s, args) for s in args.seeds]
             for arm in args.arms}
    preds = {arm: [predict(arm, s, w, args) for s, w in zip(args.seeds, ws)]
             for arm, ws in works.items()}
    cmd = [sys.executable, 'tools/compare_runs.py',
           *[f'{a}={",".join(w)}' for a, w in works.items()],
           '--predictions', *[f'{a}={",".join(p)}' for a, p in preds.items()],
           '--gt', val_gt_json(args), '--out-dir',
           osp.join(args.out, 'compare'), '--expect', *USER_EXPECT]
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    if rc == 0 and args.write_effects:
        write_effects(args, sys.argv[1:] if argv is None else argv)
    print(f'does_it_help: {len(args.arms)} arms x {len(args.seeds)} seeds x '
          f'{args.iters} iterations in {(time.time() - start) / 60:.1f} min '
          '(runs already trained are not retrained)', flush=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
