"""Actions of an investigation: one change at a time, written as a config.

Each writer returns ``(config path or None, one line)``; :func:`write_actions`
keeps one action per distinct change the findings call for, in rank order,
attaches what mmext's benchmarks measured it to do, ranks an action measured
to hurt last, and writes the control config the actions are tested against.
"""
import os
import os.path as osp
import pprint
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from mmext.investigation.evidence import MIN_DEPLOY_THR, Context
from mmext.investigation.findings import Finding
from mmext.runs import files
from mmext.utils import MMExtError

@dataclass
class Action:
    """One change, written as a config where it can be."""

    key: str
    title: str
    config: Optional[str]
    how: str
    findings: List[int] = field(default_factory=list)
    measured: Optional[str] = None
    verdict: Optional[str] = None


def _semi_model(ctx: Context) -> Optional[dict]:
    model = ctx.cfg.get('model') or {}
    return model if isinstance(model.get('semi_train_cfg'), dict) else None


def _with_hooks(ctx: Context, *new: dict) -> List[dict]:
    """The run's custom_hooks plus ``new`` (mmengine replaces lists)."""
    hooks = [dict(h) for h in ctx.cfg.get('custom_hooks') or []]
    have = {h.get('type') for h in hooks}
    return hooks + [h for h in new if h['type'] not in have]


def _action_calibrated_thresholds(ctx: Context, path: str) -> Tuple[
        Optional[str], str]:
    if ctx.cfg is None or _semi_model(ctx) is None:
        return None, 'needs the run config of a Soft Teacher model'
    semi = _semi_model(ctx)['semi_train_cfg']
    model: dict = {}
    if _semi_model(ctx).get('type') == 'SoftTeacher':
        model['type'] = 'PerClassSoftTeacher'
    policy = dict(type='calibrated', precision_target=ctx.precision_target,
                  confidence=ctx.confidence)
    initial = semi.get('pseudo_label_initial_score_thr')
    if isinstance(initial, (int, float)):
        # below the initial filter a threshold does nothing: keep the
        # calibrated values to what the stage can apply
        policy['floor'] = float(initial)
    stages = {}
    for key in ('rpn_pseudo_thr', 'cls_pseudo_thr'):
        configured = semi.get(key)
        if isinstance(configured, (int, float)):
            stages[key] = dict(_delete_=True, warmup_thr=float(configured),
                               **policy)
    if not stages:
        return None, ('the run\'s rpn/cls thresholds are not floats: set a '
                      "dict(type='calibrated', ...) policy by hand")
    model['semi_train_cfg'] = stages
    comp = ctx.evidence.competence or {}
    at = ', '.join(f'{n} {c["thr_at_target"]:.2f}' for n, c in comp.items()
                   if not n.startswith('_') and c['competent'])
    _write_overrides(ctx, path, dict(
        model=model, custom_hooks=_with_hooks(
            ctx, dict(type='TeacherCompetenceHook'),
            dict(type='PseudoThresholdHook'))),
        'calibrated per-class pseudo thresholds: per class the lowest score '
        'whose teacher validation precision (one-sided '
        f'{ctx.confidence:.0%} Wilson bound) reaches '
        f'{ctx.precision_target:g}, recomputed at every validation '
        '(TeacherCompetenceHook); a class that never reaches it keeps the '
        'run\'s threshold')
    return path, ('calibrated per-class pseudo thresholds '
                  '(PerClassSoftTeacher, TeacherCompetenceHook): from the '
                  f'latest validation {at or "no class reaches the target"}'
                  + (f' (applied as at least the initial threshold '
                     f'{policy["floor"]:g}, below which a stage filters '
                     'nothing)' if 'floor' in policy else '')
                  + '; the other classes keep the run\'s threshold')


def _rare_classes(ctx: Context, classes: List[str]) -> List[str]:
    """Classes with under half an even share of the labeled boxes."""
    eff = {r['class']: r for r in ctx.evidence.efficiency or []}
    k = max(1, len(ctx.evidence.class_names))
    return [c for c in classes if c in eff and eff[c].get('share') is not None
            and eff[c]['share'] < 0.5 / k]


def _action_supervised_first(ctx: Context, path: str) -> Tuple[
        Optional[str], str]:
    weak = sorted({c for f in ctx.extras.get('findings', [])
                   if f.rule == 'teacher_cannot_detect' for c in f.classes})
    extra = []
    anchors = ctx.evidence.anchors or {}
    short = [c for c in weak if (anchors.get(c) or {}).get(
        'no_pos_share') and anchors[c]['no_pos_share'] >= 0.10]
    if short:
        extra.append(f'anchor ratios fitted to the boxes ({", ".join(short)} '
                     'GT boxes lack RPN positives: tools/anchor_fit.py '
                     '--objective worst)')
    rare = _rare_classes(ctx, weak)
    if rare:
        extra.append(f'class-balanced sampling of the labeled set '
                     f'({", ".join(rare)} are rare there: mmdet\'s '
                     'ClassBalancedDataset around the labeled dataset)')
    also = ('; also ' + '; '.join(extra)) if extra else ''
    two_stage = ('or train the supervised config first and start Soft '
                 'Teacher from it with load_from=<its last checkpoint> '
                 '(LabelMatch)')
    iters = ((ctx.cfg or {}).get('train_cfg') or {}).get('max_iters')
    if ctx.cfg is None or _semi_model(ctx) is None or not isinstance(
            iters, int):
        return None, f'a supervised burn-in (SupervisedBurnInHook), '            f'{two_stage}{also}'
    burn_in, ramp = iters // 4, iters // 20
    _write_overrides(ctx, path, dict(custom_hooks=_with_hooks(
        ctx, dict(type='SupervisedBurnInHook', burn_in_iters=burn_in,
                  ramp_iters=ramp))),
        f'supervised burn-in: unsupervised loss weight 0 for {burn_in} '
        f'iterations, ramped back over {ramp} (Unbiased Teacher burns in for '
        '2,000 of 180k, Consistent-Teacher 10k)')
    return path, (f'a supervised burn-in: SupervisedBurnInHook('
                  f'burn_in_iters={burn_in}, ramp_iters={ramp}), {two_stage}'
                  f'{also}')


def _action_measure_competence(ctx: Context, path: str) -> Tuple[
        Optional[str], str]:
    cfg = ctx.config_path or 'CONFIG'
    return None, ('measure the teacher before changing thresholds: python '
                  f'tools/test.py {cfg} <checkpoint> --out '
                  f'{osp.join(ctx.work_dir, files.PREDICTIONS)}, then rerun '
                  'tools/investigate.py (or add TeacherCompetenceHook to '
                  'custom_hooks)')


def _action_anchors(ctx: Context, path: str) -> Tuple[Optional[str], str]:
    if ctx.cfg is None:
        return None, 'needs the run config'
    command = (f'python tools/anchor_fit.py {ctx.config_path} --objective '
               'worst --out-dir <dir>')
    if not ctx.anchor_search:
        return None, f'run {command} (--no-anchor-search given)'
    from mmext.anchors import fit_anchors, load_fit_inputs
    from mmext.anchors.config_writer import write_anchor_config
    try:
        inputs = load_fit_inputs(config=ctx.config_path,
                                 data_root=ctx.data_root)
        res = fit_anchors(inputs, None, 'worst', progress=False)
    except MMExtError as exc:
        return None, f'anchor_fit could not run ({exc}); run {command}'
    rec = res.get('recommendation')
    if not rec:
        return None, 'anchor_fit found no better ratios'
    if not rec.get('worth_a_run'):
        return None, f'anchor_fit (worst class): {rec["verdict"]}'
    obj = rec['objective_all_boxes']
    write_anchor_config(ctx.config_path, path, rec['ratios'], None,
                        'Written by tools/investigate.py via anchor_fit: '
                        f"worst-class objective {obj['current']:.4f} -> "
                        f"{obj['recommended']:.4f}")
    return path, (f'RPN anchor ratios {[round(r, 3) for r in rec["ratios"]]} '
                  f'(anchor_fit, worst class; objective {obj["current"]:.3f}'
                  f' -> {obj["recommended"]:.3f})')


def _roi_loss_override(ctx: Context) -> Optional[dict]:
    model = ctx.cfg.get('model', {})
    detector = model.get('detector', model)
    head = (detector.get('roi_head') or {}).get('bbox_head')
    if not isinstance(head, dict):
        return None
    focal = dict(_delete_=True, type='SoftmaxFocalLoss', gamma=2.0,
                 loss_weight=1.0)
    inner = dict(roi_head=dict(bbox_head=dict(loss_cls=focal)))
    return dict(detector=inner) if 'detector' in model else inner


def _action_softmax_focal(ctx: Context, path: str) -> Tuple[
        Optional[str], str]:
    if ctx.cfg is None:
        return None, 'needs the run config'
    override = _roi_loss_override(ctx)
    if override is None:
        return None, 'the model has no R-CNN bbox head'
    _write_override(ctx, path, 'model', override,
                    'SoftmaxFocalLoss in the R-CNN head: softmax over C+1 '
                    'logits, as the head is built (a sigmoid focal loss '
                    'there treats background as a class)')
    return path, ('SoftmaxFocalLoss (gamma 2, loss_weight 1) in the R-CNN '
                  'head, within what published semi-supervised detectors use '
                  '(Unbiased Teacher: gamma 1.5, R-CNN head only). mmext '
                  'measured SoftmaxFocalLoss with gamma 3.5, alpha 0.75, '
                  'loss_weight 2.5 to lower every class on the demo and '
                  'NEU-DET (benchmarks/README.md, does_it_help.py); gamma 2 '
                  'itself is not measured')


def _action_save_best(ctx: Context, path: str) -> Tuple[Optional[str], str]:
    if ctx.cfg is None:
        return None, 'needs the run config'
    model = (ctx.evidence.validation or {}).get('all', {}).get('model')
    metric = ('teacher/coco/bbox_mAP' if model == 'teacher'
              else 'coco/bbox_mAP')
    _write_override(ctx, path, 'default_hooks', dict(checkpoint=dict(
        save_best=metric, rule='greater')),
        f'keep the best checkpoint by {metric} (mmengine CheckpointHook)')
    return path, f'CheckpointHook(save_best={metric!r})'


def _action_lower_lr(ctx: Context, path: str) -> Tuple[Optional[str], str]:
    if ctx.cfg is None:
        return None, 'needs the run config'
    lr = ((ctx.cfg.get('optim_wrapper') or {}).get('optimizer') or {}).get(
        'lr')
    if not isinstance(lr, (int, float)):
        return None, 'no optim_wrapper.optimizer.lr in the config'
    _write_override(ctx, path, 'optim_wrapper',
                    dict(optimizer=dict(lr=lr / 2)),
                    f'half the learning rate ({lr:g} -> {lr / 2:g})')
    return path, f'learning rate {lr:g} -> {lr / 2:g}'


def _action_deploy_thresholds(ctx: Context, path: str) -> Tuple[
        Optional[str], str]:
    sweep = ctx.evidence.sweep or {}
    best = {n: r['best_f1_thr'] for n, r in sweep.items() if n != 'all'
            and r.get('best_f1_thr') is not None}
    # a best F1 at the grid's lowest score keeps every box: no threshold
    # helps these classes, so none is advised
    useful = {n: t for n, t in best.items() if t >= MIN_DEPLOY_THR}
    none = sorted(set(best) - set(useful))
    text = ('deploy with a score threshold per class (best F1 on the '
            'validation set): ' + (', '.join(f'{n} {t:.2f}'
                                            for n, t in useful.items())
                                  or 'none'))
    if none:
        text += (f'; no threshold for {", ".join(none)}: their best F1 is '
                 'at the lowest score, where every detection is kept')
    names = ctx.evidence.class_names or list(best)
    if useful and names:
        from mmext.evaluation.deploy_thresholds import write_class_thresholds
        stem = osp.splitext(path)[0]
        written = write_class_thresholds(useful, names, stem)
        text += (f'. Table: {written[0]} (also .json): keep a box when its '
                 'score >= the threshold of its class index '
                 '(mmext.evaluation.deploy_thresholds.keep_by_class_threshold'
                 ' on mmdet pred_instances or Ultralytics boxes), with the '
                 f'model run at score_thr / conf {min(useful.values()):.2f}')
    return None, text


def _action_train_longer(ctx: Context, path: str) -> Tuple[
        Optional[str], str]:
    iters = ((ctx.cfg or {}).get('train_cfg') or {}).get('max_iters')
    if not isinstance(iters, int):
        return None, 'train twice as long (the schedule scaled with it)'
    return None, (f'python tools/train.py {ctx.config_path} --max-iters '
                  f'{2 * iters} (the schedule is scaled with it)')


def _write_override(ctx: Context, path: str, key: str, value: dict,
                    header: str) -> None:
    _write_overrides(ctx, path, {key: value}, header)


def _write_overrides(ctx: Context, path: str, values: dict,
                     header: str) -> None:
    """A config that ``_base_``s the run's and overrides ``values``."""
    base = osp.relpath(osp.abspath(ctx.config_path),
                       osp.dirname(osp.abspath(path)))
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'# Written by tools/investigate.py: {header}.\n'
                f'_base_ = [{base!r}]\n')
        for key, value in values.items():
            f.write(f'\n{key} = ' + pprint.pformat(value, sort_dicts=False)
                    + '\n')


ACTIONS: Dict[str, Tuple[str, Optional[Callable]]] = {
    'fix_config': ('fix the config error check_config reports', None),
    'softmax_focal': ('use the softmax focal loss in the R-CNN head',
                      _action_softmax_focal),
    'calibrated_thresholds': ('calibrated per-class pseudo-label thresholds',
                              _action_calibrated_thresholds),
    'supervised_first': ('more supervised signal before pseudo labels',
                         _action_supervised_first),
    'measure_competence': ("measure the teacher's validation precision",
                           _action_measure_competence),
    'anchors': ('anchor ratios fitted to the boxes', _action_anchors),
    'lower_lr': ('a lower learning rate', _action_lower_lr),
    'save_best': ('keep the best checkpoint', _action_save_best),
    'deploy_thresholds': ('per-class deployment score thresholds',
                          _action_deploy_thresholds),
    'nms': ('a lower NMS IoU threshold in test_cfg.rcnn.nms', None),
    'train_longer': ('train longer', _action_train_longer),
    'none': ('', None),
}


def write_actions(ctx: Context, findings: List[Finding]) -> List[Action]:
    """One action per distinct change the findings call for, in rank order."""
    from mmext.checks.config_check import check_config, has_errors
    ctx.extras['findings'] = findings
    actions: Dict[str, Action] = {}
    for rank, finding in enumerate(findings, 1):
        if finding.action == 'none' or finding.action not in ACTIONS:
            continue
        if finding.action in actions:
            actions[finding.action].findings.append(rank)
            continue
        title, writer = ACTIONS[finding.action]
        path, how = None, title
        if writer is not None:
            target = osp.join(ctx.out_dir, 'actions',
                              f'{len(actions) + 1:02d}_{finding.action}.py')
            path, how = writer(ctx, target)
            if path and has_errors(check_config(path)):
                how += ' (check_config reports errors in it: see '\
                    'tools/check_config.py)'
        actions[finding.action] = Action(finding.action, title, path, how,
                                         [rank])
    _attach_measured_effects(ctx, list(actions.values()))
    # an action measured to hurt goes last, and the report says why
    ordered = sorted(actions.values(), key=lambda a: a.verdict == 'hurt')
    if any(a.config for a in ordered):
        ctx.extras['control_config'] = _write_control(ctx)
    return ordered


def _attach_measured_effects(ctx: Context, actions: List[Action]) -> None:
    from mmext.experiments.measured_effects import closest_regime, describe, verdict
    teacher_map = ((ctx.evidence.validation or {}).get('all') or {}).get(
        'mAP')
    for action in actions:
        regime = closest_regime(action.key, teacher_map)
        if regime is not None:
            action.measured = describe(regime)
            action.verdict = verdict(regime)


def _write_control(ctx: Context) -> str:
    """``actions/00_control.py``: the run's config unchanged, so that the
    control draws the same random stream as every action config (a config
    mmengine dumped draws another stream than the user's original)."""
    path = osp.join(ctx.out_dir, 'actions', '00_control.py')
    _write_overrides(ctx, path, {}, 'the control: the run\'s config '
                     'unchanged, through the same _base_ as every action')
    return path
