"""Investigate a training run: evidence from every analysis that applies,
findings ranked, one change at a time written as a config.

:func:`gather_evidence` reads what the work_dir holds (the run's config,
validations, pseudo-label / anchor / loss-stability records, predictions)
and runs the analyses those inputs allow; each one that cannot run is listed
in ``skipped`` with the reason. :func:`investigate` applies the rules of
:mod:`.findings`, writes the actions' configs and the report
(``report.md``, ``findings.json``) under ``<work_dir>/investigation``.
"""
import math
import os
import os.path as osp
import pprint
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from ..runs import files
from ..utils import MMExtError, read_jsonl
from .findings import Evidence, Finding, apply_rules

#: Score threshold a detector is deployed at when the user names none: the
#: default ``pred_score_thr`` of mmdet's DetInferencer.
DEFAULT_DEPLOY_THR = 0.3
#: A best-F1 threshold below this is no advice (it keeps every box).
MIN_DEPLOY_THR = 0.05
PSEUDO_WINDOW = 5


@dataclass
class Context:
    """Inputs of an investigation and what was read from them.

    Attributes:
        work_dir: The run.
        out_dir: Where the report and the action configs go.
        config_path: The run's config (dumped by mmengine, or given).
        cfg: The loaded config, or None.
        data_root: Replaces the config's data root.
        predictions: Predictions on the validation set, or None.
        gt: Ground-truth COCO json of the predictions, or None.
        deploy_thr: Score threshold the detector is deployed at.
        anchor_search: Run anchor_fit's search for the anchors action.
        precision_target: Teacher validation precision (as a lower
            confidence bound) that makes a class's threshold calibratable.
        confidence: One-sided confidence of that bound (Wilson).
        evidence: The measured evidence.
        skipped: ``{'analysis', 'reason'}`` per analysis that did not run.
        extras: Intermediate results the actions need.
    """

    work_dir: str
    out_dir: str
    config_path: Optional[str] = None
    cfg: object = None
    data_root: Optional[str] = None
    predictions: Optional[str] = None
    gt: Optional[str] = None
    deploy_thr: float = DEFAULT_DEPLOY_THR
    anchor_search: bool = True
    precision_target: float = 0.5
    confidence: float = 0.9
    evidence: Evidence = field(default_factory=Evidence)
    skipped: List[dict] = field(default_factory=list)
    extras: dict = field(default_factory=dict)

    def skip(self, analysis: str, reason: str) -> None:
        """Record an analysis that did not run."""
        self.skipped.append(dict(analysis=analysis, reason=reason))


# ------------------------------------------------------------- evidence
def _read_config(ctx: Context) -> None:
    from mmengine.config import Config

    from ..utils.config import metainfo_classes, set_data_root, \
        train_dataset_cfg
    from ..runs.work_dir import find_run_config
    try:
        ctx.config_path = ctx.config_path or find_run_config(ctx.work_dir)
        ctx.cfg = Config.fromfile(ctx.config_path)
    except MMExtError as exc:
        ctx.skip('config', str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - any config error is one line
        ctx.skip('config', f'{ctx.config_path}: cannot be loaded '
                 f'({type(exc).__name__}: {exc})')
        ctx.cfg = None
        return
    if ctx.data_root:
        set_data_root(ctx.cfg, ctx.data_root)
    try:
        classes = metainfo_classes(train_dataset_cfg(ctx.cfg))
    except MMExtError:
        classes = None
    classes = classes or (ctx.cfg.get('metainfo') or {}).get('classes')
    if classes:
        ctx.evidence.class_names = list(classes)


def _read_validation(ctx: Context) -> None:
    from ..runs.validations import (classwise_ap, map_key_prefix,
                                    monitored_map_key, monitored_model,
                                    read_work_dir_validations)
    try:
        records = read_work_dir_validations(ctx.work_dir)
    except MMExtError as exc:
        ctx.skip('validation', str(exc))
        return
    key = monitored_map_key(records)
    if key is None or not ctx.evidence.class_names:
        ctx.skip('validation', f'{ctx.work_dir}: no bbox_mAP logged' if key
                 is None else 'no class names (no config)')
        return
    model = monitored_model(key)
    names = ctx.evidence.class_names
    per_record = [(r, classwise_ap(r, names).get(model, {}))
                  for r in records if key in r]
    last, last_ap = per_record[-1]
    out = {}
    for name in names:
        history = [(r.get('step'), ap.get(name)) for r, ap in per_record
                   if _valid(ap.get(name))]
        best = max(history, key=lambda h: h[1]) if history else (None, None)
        out[name] = dict(ap=last_ap.get(name) if _valid(last_ap.get(name))
                         else None, best_ap=best[1], best_iter=best[0])
    prefix = map_key_prefix(key)
    out['all'] = dict(mAP=last.get(key),
                      mAP50=last.get(f'{prefix}coco/bbox_mAP_50'),
                      iter=last.get('step'), model=model)
    ctx.evidence.validation = out


def _valid(value) -> bool:
    return value is not None and not math.isnan(value) and value >= 0


def _monitor_file(ctx: Context, name: str, analysis: str,
                  why: str) -> Optional[str]:
    """``WORK_DIR/name`` if it exists, else None and a skip saying ``why``."""
    path = osp.join(ctx.work_dir, name)
    if osp.isfile(path):
        return path
    ctx.skip(analysis, f'{path}: not found ({why})')
    return None


def _read_pseudo(ctx: Context) -> None:
    path = _monitor_file(ctx, files.PSEUDO_LABEL_STATS, 'pseudo labels',
                         'no PseudoLabelStatsHook, or not a Soft Teacher run')
    if path is None:
        return
    from ..runs.pseudo_records import read_records
    try:
        window = read_records(path)[-PSEUDO_WINDOW:]
        pseudo = _pseudo_summary(window)
    except MMExtError as exc:
        ctx.skip('pseudo labels', str(exc))
        return
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        ctx.skip('pseudo labels', f'{path}: not a pseudo-label record '
                 f'({type(exc).__name__}: {exc})')
        return
    ctx.evidence.pseudo = pseudo
    if not ctx.evidence.class_names:
        ctx.evidence.class_names = list(window[-1]['classes'])


def _pseudo_summary(records: List[dict]) -> dict:
    """Counts per stage and class, cls precision, summed over ``records``."""
    from ..runs.pseudo_records import precision, window_totals
    totals = window_totals(records)
    names = totals['classes']
    counts = {stage: {n: int(by_class[n]) for n in names}
              for stage, by_class in totals['counts'].items()}
    cls_precision = None
    if totals['gt_records'] == len(records):
        cls_precision = {n: precision(totals, 'cls', n) for n in names}
    return dict(counts=counts, precision=cls_precision,
                thresholds=totals['thresholds'], iters=totals['iters'])


def _read_anchors(ctx: Context) -> None:
    path = _monitor_file(ctx, files.ANCHOR_MATCH_STATS, 'anchor matching',
                         'no AnchorMatchStatsHook in the run')
    if path is None:
        return
    records = read_jsonl(path)
    rpn = records[-1].get('rpn') if records else None
    if not isinstance(rpn, dict) or not all(
            isinstance(v, dict) for v in rpn.values()):
        ctx.skip('anchor matching', f'{path}: no RPN record')
        return
    ctx.evidence.anchors = rpn


def _read_stability(ctx: Context) -> None:
    from ..runs.log_warnings import read_warnings
    path = _monitor_file(ctx, files.LOSS_STABILITY, 'loss stability',
                         'no LossStabilityHook, or a version before it '
                         'wrote one')
    if path is not None:
        ctx.evidence.stability = [r for r in read_jsonl(path)
                                  if isinstance(r.get('losses'), dict)]
    ctx.evidence.nonfinite = [
        w['message'] for w in read_warnings(ctx.work_dir)
        if 'non-finite loss' in w['message']]


def _read_config_check(ctx: Context) -> None:
    if ctx.cfg is None:
        return
    from .config_check import check_config
    try:
        ctx.evidence.config_findings = [
            f.to_dict() for f in check_config(ctx.config_path)]
    except MMExtError as exc:
        ctx.skip('config check', str(exc))


def _find_predictions(ctx: Context) -> None:
    if ctx.predictions is None:
        found = osp.join(ctx.work_dir, files.PREDICTIONS)
        if osp.isfile(found):
            ctx.predictions = found
    if ctx.predictions is None:
        ctx.skip('error breakdown, threshold sweep',
                 'no predictions (tools/test.py --out WORK_DIR/eval/'
                 'predictions.pkl, or --predictions)')


def _read_predictions(ctx: Context) -> None:
    _find_predictions(ctx)
    if ctx.predictions is None:
        return
    from .ground_truth import load_ground_truth
    from .predictions import load_detections
    try:
        gt = load_ground_truth(ctx.gt, ctx.config_path if ctx.cfg else None,
                               ctx.data_root)
        dets = load_detections(ctx.predictions, gt, gt_json=ctx.gt)
    except MMExtError as exc:
        ctx.skip('error breakdown, threshold sweep', str(exc))
        return
    from .error_breakdown import error_breakdown
    from .teacher_competence import competence_from_predictions
    from .threshold_sweep import sweep_thresholds
    ctx.evidence.errors = error_breakdown(gt, dets).rows()
    _set_competence(ctx, competence_from_predictions(gt, dets),
                    f'{ctx.predictions}, IoU 0.5')
    result = sweep_thresholds(gt, dets)
    sweep = {}
    thr = result.thresholds
    at = int(abs(thr - ctx.deploy_thr).argmin())
    for curve in result.curves:
        best_thr, best_f1 = curve.best_f1(thr)
        name = 'all' if curve is result.curves[-1] else curve.name
        sweep[name] = dict(best_f1_thr=None if math.isnan(best_thr) else
                           best_thr, best_f1=best_f1,
                           f1_at_deployed=float(curve.f1[at]))
    sweep['all']['deployed_thr'] = float(thr[at])
    ctx.evidence.sweep = sweep


def _set_competence(ctx: Context, record: dict, source: str) -> None:
    from ..runs.teacher_competence import class_competence
    rows = class_competence(record, ctx.precision_target, ctx.confidence)
    ctx.evidence.competence = {r['class']: r for r in rows}
    ctx.evidence.competence.update(_source=source,
                                   _target=ctx.precision_target,
                                   _confidence=ctx.confidence)


def _read_competence(ctx: Context) -> None:
    """The teacher's last recorded competence, when no predictions gave one."""
    if ctx.evidence.competence is not None:
        return
    path = _monitor_file(ctx, files.TEACHER_COMPETENCE, 'teacher competence',
                         'no TeacherCompetenceHook and no predictions')
    if path is None:
        return
    records = read_jsonl(path)
    if not records:
        ctx.skip('teacher competence', f'{path}: no record')
        return
    try:
        _set_competence(ctx, records[-1], f'{path}, validation at iteration '
                        f'{records[-1].get("iter")}')
    except (KeyError, TypeError, ValueError) as exc:
        ctx.skip('teacher competence', f'{path}: not a competence record '
                 f'({type(exc).__name__}: {exc})')


def _read_efficiency(ctx: Context) -> None:
    val = ctx.evidence.validation
    if ctx.cfg is None or not val:
        return
    from ..data import load_boxes_from_config
    from .class_efficiency import class_efficiency
    try:
        boxes = load_boxes_from_config(ctx.cfg)
    except MMExtError as exc:
        ctx.skip('class efficiency', f'labeled train boxes: {exc}')
        return
    ap = {n: v['ap'] for n, v in val.items() if n != 'all'
          and v.get('ap') is not None}
    ctx.evidence.efficiency = class_efficiency(boxes.class_counts(), ap,
                                               val['all']['model'])


STEP_ANALYSIS = {'anchors': 'anchor matching', 'pseudo': 'pseudo labels',
                 'stability': 'loss stability',
                 'predictions': 'error breakdown, threshold sweep',
                 'efficiency': 'class efficiency'}
EVIDENCE_STEPS: Tuple[Callable[[Context], None], ...] = (
    _read_config, _read_validation, _read_pseudo, _read_anchors,
    _read_stability, _read_config_check, _read_predictions,
    _read_competence, _read_efficiency)


def gather_evidence(ctx: Context, progress: bool = True) -> Context:
    """Run every evidence step that applies (in place; returns ``ctx``)."""
    if not osp.isdir(ctx.work_dir):
        raise MMExtError(f'{ctx.work_dir}: not a folder')
    for step in EVIDENCE_STEPS:
        name = step.__name__[len('_read_'):].replace('_', ' ')
        if progress:
            print(f'investigate: {name}', flush=True)
        try:
            step(ctx)
        except MMExtError as exc:  # a bad file skips its analysis only
            ctx.skip(STEP_ANALYSIS.get(name, name), str(exc))
    if not ctx.evidence.class_names:
        raise MMExtError(f'{ctx.work_dir}: no config and no monitor records '
                         'to take the class names from (pass --config)')
    return ctx


# -------------------------------------------------------------- actions
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
                  '; the other classes keep the run\'s threshold')


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
    from ..anchors import fit_anchors, load_fit_inputs
    from ..anchors.config_writer import write_anchor_config
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
    return path, 'SoftmaxFocalLoss (gamma 2) in the R-CNN head'


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
    from .config_check import check_config, has_errors
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
    from .measured_effects import closest_regime, describe, verdict
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


# --------------------------------------------------------------- report
def problem_rows(ev: Evidence) -> List[dict]:
    """Per class AP, best AP and efficiency, worst AP first."""
    val = ev.validation or {}
    eff = {r['class']: r for r in ev.efficiency or []}
    ap50 = {r['class']: r['ap50'] for r in ev.errors or []}
    rows = []
    for name in ev.class_names:
        v = val.get(name, {})
        e = eff.get(name, {})
        rows.append({'class': name, 'ap': v.get('ap'),
                     'best_ap': v.get('best_ap'), 'ap50': ap50.get(name),
                     'boxes': e.get('boxes'), 'share': e.get('share'),
                     'efficiency': e.get('efficiency'),
                     'status': e.get('status')})
    rows.sort(key=lambda r: (r['ap'] is None, r['ap'] if r['ap'] is not None
                             else 0))
    return rows


def problem_summary(ev: Evidence) -> str:
    """One sentence: mAP and the worst classes."""
    val = (ev.validation or {}).get('all')
    rows = [r for r in problem_rows(ev) if r['ap'] is not None]
    if not val:
        return 'No validation was logged: the per-class AP is unknown.'
    worst = ', '.join(f'{r["class"]} {r["ap"]:.3f}' for r in rows[:2])
    it = val.get('iter')
    return (f'{val["model"]} mAP {_num(val.get("mAP"))} (mAP50 '
            f'{_num(val.get("mAP50"))}) at iteration '
            f'{int(it) if isinstance(it, (int, float)) else "?"}; '
            f'worst classes: {worst or "-"}.')


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{value:.{digits}f}'


def render_markdown(ctx: Context, findings: List[Finding],
                    actions: List[Action]) -> str:
    """The report in the user's shape: problem, findings, causes, actions,
    what to monitor, what was skipped."""
    from .report import format_markdown
    ev = ctx.evidence
    lines = [f'# Investigation of `{ctx.work_dir}`', '',
             '## The problem in numbers', '', problem_summary(ev), '']
    rows = [{k: (_num(v) if isinstance(v, float) else v)
             for k, v in r.items()} for r in problem_rows(ev)]
    cols = [c for c in rows[0] if any(r[c] not in (None, '-') for r in rows)]
    lines += [format_markdown(rows, cols), '', '## Findings, ranked', '']
    if not findings:
        lines.append('No rule fired on the evidence below.')
    for i, f in enumerate(findings, 1):
        impact = (f', fixing it adds at most +{f.impact:.3f} '
                  f'{f.impact_metric}' if f.impact else '')
        lines += [f'{i}. **{f.title}** ({f.strength}{impact}).',
                  f'   Evidence: {f.evidence}. Measured by `{f.tool}`.']
    lines += ['', '## Likely root causes', '']
    for cause, ranks in _causes(findings).items():
        lines.append(f'- {cause} (findings {", ".join(map(str, ranks))})')
    lines += ['', '## Recommended actions, one change at a time', '']
    for i, a in enumerate(actions, 1):
        lines += _action_lines(i, a)
    lines += ['', '## What to monitor next', '']
    for i, f in enumerate(findings, 1):
        lines.append(f'- finding {i}: {f.monitor}')
    if ctx.extras.get('control_config'):
        lines += ['', '## How to test an action on your run', '']
        lines += _test_protocol(ctx, [a for a in actions if a.config])
    if ctx.skipped:
        lines += ['', '## Skipped', '']
        lines += [f'- {s["analysis"]}: {s["reason"]}' for s in ctx.skipped]
    return '\n'.join(lines) + '\n'


def _action_lines(rank: int, a: Action) -> List[str]:
    """One action: the change, its measured effect, its config."""
    lines = [f'{rank}. **{a.title}** for findings '
             f'{", ".join(map(str, a.findings))}: {a.how}.']
    if a.verdict == 'hurt':
        lines.append('   **Measured to hurt** in mmext\'s benchmark, so it '
                     'is ranked last: try it only against a control, as '
                     'below.')
    if a.measured:
        lines.append(f'   Measured effect: {a.measured}.')
    else:
        lines.append('   Measured effect: not measured in mmext\'s '
                     'benchmarks; its effect on your run is unknown until '
                     'tested.')
    if a.config:
        lines.append(f'   Config: `{a.config}`.')
    return lines


def _val_gt_json(ctx: Context) -> Tuple[Optional[str], str]:
    """The validation set's COCO json for compare_runs --gt, or a reason."""
    from ..utils.config import dataset_ann_path
    loader = (ctx.cfg or {}).get('val_dataloader') or {}
    ds = loader.get('dataset') if isinstance(loader, dict) else None
    if not isinstance(ds, dict):
        return None, 'the config has no val_dataloader.dataset'
    ann = dataset_ann_path(ds)
    if not ann.endswith('.json'):
        return None, (f'the validation annotations ({ann}) are not a COCO '
                      'json: write one for compare_runs --gt')
    return ann, ''


def _test_protocol(ctx: Context, actions: List[Action]) -> List[str]:
    """Commands: control and action on the same random stream, 2 seeds,
    predictions, compare_runs with paired intervals."""
    control = ctx.extras['control_config']
    gt, why = _val_gt_json(ctx)
    out_root = osp.join('work_dirs', osp.basename(osp.normpath(
        ctx.work_dir)) + '_actions')
    lines = [f'Train the control `{control}` and the action with the same '
             'two seeds: both `_base_` the same config, so they draw the '
             'same random stream (your original run does not: a config '
             'mmengine dumped draws another). Then predict and compare with '
             'paired intervals. For action `ACTION` (e.g. '
             f'`{osp.splitext(osp.basename(actions[0].config))[0]}`):', '',
             '```bash', 'for arm in 00_control ACTION; do for seed in 0 1; '
             'do', f'  w={out_root}/${{arm}}_s$seed',
             f'  python tools/train.py {osp.dirname(control)}/$arm.py '
             '--work-dir $w --cfg-options randomness.seed=$seed',
             f'  python tools/test.py {osp.dirname(control)}/$arm.py '
             '$(cat $w/last_checkpoint) --work-dir $w/eval --out '
             '$w/eval/predictions.pkl', 'done; done']
    if gt:
        lines.append(
            f'python tools/compare_runs.py control={out_root}/00_control_s0,'
            f'{out_root}/00_control_s1 ACTION={out_root}/ACTION_s0,'
            f'{out_root}/ACTION_s1 --predictions control={out_root}/'
            f'00_control_s0/eval/predictions.pkl,{out_root}/00_control_s1/'
            f'eval/predictions.pkl ACTION={out_root}/ACTION_s0/eval/'
            f'predictions.pkl,{out_root}/ACTION_s1/eval/predictions.pkl '
            f'--gt {gt}')
    lines.append('```')
    if not gt:
        lines.append(f'compare_runs gives paired bootstrap intervals only '
                     f'with --gt: {why}.')
    return lines


def _causes(findings: List[Finding]) -> Dict[str, List[int]]:
    out: Dict[str, List[int]] = {}
    for rank, f in enumerate(findings, 1):
        out.setdefault(f.cause, []).append(rank)
    return out


def investigate(ctx: Context, progress: bool = True) -> dict:
    """Gather evidence, rank findings, write actions and the report.

    Returns:
        The findings.json content; ``report.md`` and ``findings.json`` are
        written to ``ctx.out_dir``, action configs to ``ctx.out_dir/actions``.
    """
    from .report import write_json
    gather_evidence(ctx, progress)
    findings = apply_rules(ctx.evidence)
    actions = write_actions(ctx, findings)
    os.makedirs(ctx.out_dir, exist_ok=True)
    report = render_markdown(ctx, findings, actions)
    with open(osp.join(ctx.out_dir, 'report.md'), 'w',
              encoding='utf-8') as f:
        f.write(report)
    by_action = {a.key: a for a in actions}
    content = dict(
        work_dir=ctx.work_dir,
        problem=dict(summary=problem_summary(ctx.evidence),
                     rows=problem_rows(ctx.evidence)),
        findings=[dict(rank=i, **f.to_dict(),
                       action_config=getattr(by_action.get(f.action),
                                             'config', None))
                  for i, f in enumerate(findings, 1)],
        actions=[a.__dict__ for a in actions],
        skipped=ctx.skipped)
    write_json(content, osp.join(ctx.out_dir, osp.basename(files.FINDINGS)))
    content['report'] = report
    return content
