"""Evidence of an investigation: what a work_dir holds, read and analysed.

:func:`gather_evidence` reads the run's config, validations, pseudo-label /
anchor / loss-stability records, the teacher's competence and predictions,
and runs the analyses those inputs allow; each one that cannot run is listed
in ``Context.skipped`` with the reason.
"""
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from mmext.investigation.findings import Evidence
from mmext.runs import WorkDir, files
from mmext.utils import MMExtError, read_jsonl

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
        img_dir: Folder of the ground truth's images (for the gallery),
            default the config's val images.
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
    img_dir: Optional[str] = None
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

    from mmext.utils.config import metainfo_classes, set_data_root, \
        train_dataset_cfg
    from mmext.runs.work_dir import find_run_config
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
    from mmext.runs.validations import (classwise_ap, map_key_prefix,
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
    from mmext.runs.pseudo_records import read_records
    try:
        skipped = {}
        window = read_records(path, skipped)[-PSEUDO_WINDOW:]
        pseudo = _pseudo_summary(window)
        if skipped:
            ctx.skip('pseudo labels (some records)',
                     f'{path}: {skipped[path]} record(s) with counts that '
                     'are not numbers >= 0 left out')
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
    from mmext.runs.pseudo_records import precision, window_totals
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
    path = _monitor_file(ctx, files.LOSS_STABILITY, 'loss stability',
                         'no LossStabilityHook, or a version before it '
                         'wrote one')
    if path is not None:
        ctx.evidence.stability = [r for r in read_jsonl(path)
                                  if isinstance(r.get('losses'), dict)]
    ctx.evidence.nonfinite = [
        w['message'] for w in WorkDir(ctx.work_dir).warnings()
        if 'non-finite loss' in w['message']]


def _read_config_check(ctx: Context) -> None:
    if ctx.cfg is None:
        return
    from mmext.checks.config_check import check_config
    try:
        ctx.evidence.config_findings = [
            f.to_dict() for f in check_config(ctx.config_path)]
    except MMExtError as exc:
        ctx.skip('config check', str(exc))


def _find_predictions(ctx: Context) -> None:
    if ctx.predictions is None:
        ctx.predictions = WorkDir(ctx.work_dir).predictions()
    if ctx.predictions is None:
        ctx.skip('error breakdown, threshold sweep',
                 'no predictions (tools/test.py --out WORK_DIR/eval/'
                 'predictions.pkl, or --predictions)')


def _read_predictions(ctx: Context) -> None:
    _find_predictions(ctx)
    if ctx.predictions is None:
        return
    from mmext.evaluation.ground_truth import load_ground_truth
    from mmext.evaluation.predictions import load_detections
    try:
        gt = load_ground_truth(ctx.gt, ctx.config_path if ctx.cfg else None,
                               ctx.data_root)
        dets = load_detections(ctx.predictions, gt, gt_json=ctx.gt)
    except MMExtError as exc:
        ctx.skip('error breakdown, threshold sweep', str(exc))
        return
    from mmext.evaluation.error_breakdown import error_breakdown
    from mmext.evaluation.teacher_competence import competence_from_predictions
    from mmext.evaluation.threshold_sweep import sweep_thresholds
    if not ctx.evidence.class_names:
        # no config or monitor records: the ground truth names the classes
        ctx.evidence.class_names = list(gt.class_names)
    breakdown = error_breakdown(gt, dets)
    ctx.evidence.errors = breakdown.rows()
    # the gallery beside the findings draws these boxes (investigate.py)
    ctx.extras['breakdown'] = (gt, dets, breakdown)
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
    from mmext.runs.teacher_competence import class_competence
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
    from mmext.data import load_boxes_from_config
    from mmext.evaluation.class_efficiency import class_efficiency
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
                 'efficiency': 'class efficiency',
                 'competence': 'teacher competence'}
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
