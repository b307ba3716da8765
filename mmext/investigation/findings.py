"""Findings: small rules that turn measured evidence into ranked statements.

Each rule is a function ``rule(evidence) -> list[Finding]`` registered with
:func:`finding_rule`; it reads only the :class:`Evidence` fields it needs and
returns nothing when they are absent or below its thresholds. A finding
carries the numbers behind it, the mmext tool that measures them, the likely
root cause, one action (a key into the actions that
:mod:`mmext.investigation.investigate` can write as a config) and what to watch
after the change.

Ranking (:func:`rank_findings`): by strength of evidence first

- ``certain``: a configuration fact (e.g. a sigmoid focal loss in a softmax
  head), no statistics involved;
- ``strong``: a direct count over enough cases (>= ``MIN_CASES``);
- ``moderate``: measured, but on few cases or a small effect;
- ``weak``: a heuristic or a correlation;

then by expected AP impact, an upper bound on what a fix can add (0-1
scale), always from a measured oracle and named with its metric
(``impact_metric``): for an error type, or for classes the fix would give
more detections, the mAP50 that TIDE's oracle fix of those errors adds (the
error breakdown: fixing every missed box of the classes); for a class whose
AP fell, its drop from its best (mAP). None where nothing measured bounds it.

Pseudo-label findings are gated on the teacher's measured competence
(``Evidence.competence``: its precision on the labeled validation set at
every score threshold, :mod:`mmext.runs.teacher_competence`). A class whose
precision reaches the target at some threshold has a threshold that is too
strict (action: the calibrated threshold); a class whose teacher never
reaches it cannot yet be detected, and lowering its threshold would feed the
student mostly wrong boxes (actions on the supervised side instead).
"""
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

STRENGTHS = ('certain', 'strong', 'moderate', 'weak')
#: Cases (boxes, GT instances) a count needs before it is "strong".
MIN_CASES = 20
#: A class's GT boxes without an RPN positive anchor: share that fires.
NO_POS_SHARE = 0.10
#: Cls-stage pseudo-label precision below this fires (with ground truth).
LOW_PRECISION = 0.5
#: AP50 an error type must cost a class to be reported.
MIN_ERROR_DAP = 0.02
#: Best-F1 score threshold of a class this far from the deployed one fires.
THRESHOLD_GAP = 0.15
#: Final AP this far (absolute) below the run's best AP of the class fires.
AP_DROP = 0.03

RULES: Dict[str, Callable[['Evidence'], List['Finding']]] = {}


@dataclass
class Evidence:
    """What an investigation measured; every part is optional.

    Attributes:
        class_names: Class names in label order.
        validation: Per class ``{'ap', 'ap50', 'best_ap', 'best_iter'}`` of the
            monitored model (teacher for Soft Teacher), plus ``mAP``/``mAP50``
            under the key ``'all'``.
        pseudo: Per class and stage (``raw``, ``initial``, ``rpn``, ``cls``)
            pseudo-label counts over the last records (``counts``), cls-stage
            precision (``precision``), thresholds in force (``thresholds``),
            first/last iteration (``iters``).
        anchors: Per class ``{'num_gts', 'pos_per_gt', 'no_pos_share'}`` of
            the RPN (AnchorMatchStatsHook's last record).
        errors: Rows of :meth:`ErrorBreakdown.rows` (per class + ``all``).
        sweep: Per class ``{'best_f1_thr', 'best_f1', 'f1_at_deployed'}`` and
            ``deployed_thr`` under the key ``'all'``.
        efficiency: Rows of :func:`class_efficiency` (one model).
        competence: Per class, :func:`mmext.runs.teacher_competence.
            class_competence` rows of the teacher on the labeled validation
            set, plus ``_source`` (where they were measured) and
            ``_target``/``_confidence`` (the precision bound asked for).
        config_findings: ``ConfigFinding.to_dict()`` of check_config.
        stability: LossStabilityHook windows (``loss_stability.jsonl``).
        nonfinite: LossStabilityHook's non-finite-loss warnings.
    """

    class_names: List[str] = field(default_factory=list)
    validation: Optional[Dict[str, dict]] = None
    pseudo: Optional[dict] = None
    anchors: Optional[Dict[str, dict]] = None
    errors: Optional[List[dict]] = None
    sweep: Optional[Dict[str, dict]] = None
    efficiency: Optional[List[dict]] = None
    config_findings: Optional[List[dict]] = None
    stability: Optional[List[dict]] = None
    nonfinite: Optional[List[str]] = None
    competence: Optional[Dict[str, dict]] = None


@dataclass
class Finding:
    """One statement with its numbers.

    Attributes:
        rule: The rule's registered name.
        title: One line, with the classes.
        strength: One of :data:`STRENGTHS`.
        impact: Upper bound on the gain of the fix (0-1 scale) in
            ``impact_metric``, None if nothing measured bounds it (see the
            module docstring).
        classes: The classes concerned (empty: the whole run).
        evidence: One sentence with the numbers.
        tool: The mmext tool that shows the numbers.
        cause: Likely root cause.
        action: Key of the recommended change (see investigation.ACTIONS).
        monitor: What to watch after the change.
        numbers: The numbers, machine-readable.
    """

    rule: str
    title: str
    strength: str
    impact: Optional[float]
    classes: List[str]
    evidence: str
    tool: str
    cause: str
    action: str
    monitor: str
    numbers: dict = field(default_factory=dict)
    impact_metric: str = 'mAP'

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def finding_rule(name: str) -> Callable:
    """Register ``rule(evidence) -> list[Finding]`` under ``name``."""
    def register(func: Callable) -> Callable:
        if name in RULES:
            raise KeyError(f'finding rule {name!r} is already registered')
        RULES[name] = func
        return func
    return register


def apply_rules(evidence: Evidence,
                names: Optional[Sequence[str]] = None) -> List[Finding]:
    """Every registered rule (or ``names``) on ``evidence``, ranked."""
    found: List[Finding] = []
    for name in names or RULES:
        found.extend(RULES[name](evidence))
    return rank_findings(found)


def rank_findings(findings: Sequence[Finding]) -> List[Finding]:
    """Strength first (certain .. weak), then expected AP impact."""
    return sorted(findings, key=lambda f: (
        STRENGTHS.index(f.strength),
        -(f.impact if f.impact is not None else 0.0)))


def _by_cases(n: float) -> str:
    return 'strong' if n >= MIN_CASES else 'moderate'


def _fmt_classes(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else \
        ', '.join(items[:-1]) + ' and ' + items[-1]


def _missed_dap(evidence: Evidence, classes: Sequence[str]
                ) -> Optional[float]:
    """mAP50 that fixing every missed GT box of ``classes`` adds (TIDE's
    oracle, from the error breakdown): an upper bound on what more
    detections of those classes can give. None without predictions."""
    rows = [r for r in evidence.errors or [] if r.get('class') != 'all']
    if not rows:
        return None
    gain = sum(r.get('dap_missed', 0.0) for r in rows
               if r['class'] in classes)
    return max(0.0, gain / len(rows))


def split_by_competence(evidence: Evidence, classes: Sequence[str]
                        ) -> Tuple[List[str], List[str], List[str]]:
    """``classes`` split into (the teacher reaches the precision target at
    some threshold, it never does, not measured)."""
    comp = evidence.competence or {}
    can = [c for c in classes if c in comp and comp[c]['competent']]
    cannot = [c for c in classes if c in comp and not comp[c]['competent']]
    unknown = [c for c in classes if c not in comp]
    return can, cannot, unknown


def _competence_target(evidence: Evidence) -> str:
    comp = evidence.competence or {}
    return (f'precision >= {comp.get("_target", 0.5):g} at '
            f'{comp.get("_confidence", 0.9):.0%} confidence')


def _can_detect_text(evidence: Evidence, names: Sequence[str]) -> str:
    comp = evidence.competence
    return ', '.join(
        f'{n}: precision {comp[n]["precision_at_target"]:.2f}, recall '
        f'{_fmt_share(comp[n]["recall_at_target"])} at score '
        f'{comp[n]["thr_at_target"]:.2f}' for n in names)


def _cannot_detect_text(evidence: Evidence, names: Sequence[str]) -> str:
    comp = evidence.competence
    parts = []
    for n in names:
        c = comp[n]
        best = ('no detection at all' if c['best_precision'] is None else
                f'best precision {c["best_precision"]:.2f} (of '
                f'{c["best_precision_boxes"]} kept boxes; lower bound '
                f'{c["best_lower_bound"]:.2f})')
        parts.append(f'{n}: {best}')
    return '; '.join(parts)


def _fmt_share(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def _threshold_findings(evidence: Evidence, classes: Sequence[str],
                        rule: str, describe: Callable[[Sequence[str]], str],
                        numbers: dict, strength: str) -> List['Finding']:
    """The competence-gated findings of classes whose pseudo labels a
    threshold governs: too strict where the teacher is competent, a
    supervised problem where it is not, unmeasured otherwise.

    Args:
        describe: The problem, in one clause, for a subset of ``classes``
            (each finding states it for its own classes only).
    """
    can, cannot, unknown = split_by_competence(evidence, classes)
    source = (evidence.competence or {}).get('_source', '')
    out = []
    if can:
        out.append(Finding(
            rule=rule, title=f'the pseudo-label threshold is too strict for '
            f'{_fmt_classes(can)}',
            strength=strength, impact=_missed_dap(evidence, can),
            impact_metric='mAP50', classes=can,
            evidence=f'{describe(can)}; yet the teacher reaches '
            f'{_competence_target(evidence)} on the labeled validation set: '
            + _can_detect_text(evidence, can) + f' ({source})',
            tool='TeacherCompetenceHook, tools/threshold_sweep.py',
            cause='one score threshold for all classes: the teacher scores '
                  'these classes lower than the others, though what it keeps '
                  'above the calibrated threshold is mostly right',
            action='calibrated_thresholds',
            monitor='kept ratio and pseudo-label precision of these classes '
                    '(pseudo_label_stats.jsonl), their teacher AP',
            numbers=dict(numbers, competence={
                n: evidence.competence[n] for n in can})))
    if cannot:
        out.append(Finding(
            rule='teacher_cannot_detect',
            title=f'the teacher cannot yet detect {_fmt_classes(cannot)}: '
                  'lowering their threshold would add noise',
            strength=_by_cases(min(evidence.competence[n]['num_gt']
                                   for n in cannot)),
            impact=_missed_dap(evidence, cannot), impact_metric='mAP50',
            classes=cannot,
            evidence=f'{describe(cannot)}; on the labeled validation set no '
            'score '
            f'threshold reaches {_competence_target(evidence)}: '
            + _cannot_detect_text(evidence, cannot) + f' ({source})',
            tool='TeacherCompetenceHook, tools/threshold_sweep.py',
            cause='too little supervised signal for these classes yet: a '
                  'lower pseudo-label threshold would feed the student '
                  'mostly wrong boxes (mmext measured lowered per-class '
                  'thresholds to hurt on a weak teacher)',
            action='supervised_first',
            monitor='the teacher\'s validation precision of these classes '
                    '(teacher_competence.jsonl) until a threshold reaches the '
                    'target; then calibrated thresholds',
            numbers=dict(numbers, competence={
                n: evidence.competence[n] for n in cannot})))
    if unknown:
        out.append(Finding(
            rule=rule, title=f'{_fmt_classes(unknown)}: pseudo labels in '
            'question, and whether the teacher can detect them is not '
            'measured',
            strength='weak', impact=_missed_dap(evidence, unknown),
            impact_metric='mAP50', classes=unknown,
            evidence=f'{describe(unknown)}; no predictions on the labeled '
            'validation '
            'set and no teacher_competence.jsonl, so a lower threshold may '
            'add objects or noise',
            tool='tools/test.py --out, TeacherCompetenceHook',
            cause='unknown until the teacher\'s validation precision is '
                  'measured',
            action='measure_competence',
            monitor='teacher_competence.jsonl', numbers=numbers))
    return out


# --------------------------------------------------------------- the rules
@finding_rule('config_error')
def config_errors(evidence: Evidence) -> List[Finding]:
    """check_config errors: certain, whatever the training showed."""
    out = []
    for item in evidence.config_findings or []:
        if item.get('severity') != 'error':
            continue
        focal = 'focal' in (item.get('message', '') + item.get('check', '')
                            ).lower()
        out.append(Finding(
            rule='config_error', title=f'config error: {item.get("check")}',
            strength='certain', impact=None, classes=[],
            evidence=item.get('message', ''), tool='tools/check_config.py',
            cause='the configuration itself',
            action='softmax_focal' if focal else 'fix_config',
            monitor='tools/check_config.py reports 0 errors', numbers=item))
    return out


@finding_rule('pseudo_starved')
def pseudo_starved(evidence: Evidence) -> List[Finding]:
    """Classes the teacher scores but no pseudo label reaches a stage.

    Stages with the same starved classes are one finding ("at the rpn and
    cls stages"): with one threshold for both, they starve together.
    """
    pseudo = evidence.pseudo
    if not pseudo:
        return []
    counts = pseudo['counts']
    by_set: Dict[tuple, List[str]] = {}
    for stage in ('rpn', 'cls'):
        if stage not in counts:
            continue
        starved = tuple(n for n in evidence.class_names
                        if counts['raw'].get(n, 0) > 0
                        and counts[stage].get(n, 0) == 0)
        if starved:
            by_set.setdefault(starved, []).append(stage)
    out = []
    lo, hi = pseudo.get('iters', (None, None))
    for starved, stages in by_set.items():
        raw = {n: int(counts['raw'][n]) for n in starved}
        where = ' and '.join(stages)
        thr = {s: pseudo.get('thresholds', {}).get(s) for s in stages}
        def problem(names, where=where, raw=raw, thr=thr, stages=stages):
            return (f'no pseudo label kept at the {where} '
                    f'stage{"s" if len(stages) > 1 else ""} in iterations '
                    f'{lo}-{hi} (' + ', '.join(
                        f'{n} {raw[n]} raw teacher boxes' for n in names)
                    + '; threshold ' + ', '.join(
                        f'{s} {_fmt_thr(t)}' for s, t in thr.items()) + ')')
        out += _threshold_findings(
            evidence, starved, 'pseudo_starved', problem,
            dict(stages=stages, raw=raw, thresholds=thr),
            _by_cases(min(raw.values())))
    return out


@finding_rule('noisy_pseudo_labels')
def noisy_pseudo_labels(evidence: Evidence) -> List[Finding]:
    """Classes whose cls-stage pseudo labels are mostly wrong."""
    pseudo = evidence.pseudo
    if not pseudo or not pseudo.get('precision'):
        return []
    kept = pseudo['counts'].get('cls', {})
    noisy = {n: p for n, p in pseudo['precision'].items()
             if n in evidence.class_names and p is not None
             and p < LOW_PRECISION and kept.get(n, 0) >= 5}
    if not noisy:
        return []
    names = sorted(noisy, key=noisy.get)
    def problem(subset):
        return ('mostly wrong pseudo labels at the cls stage (matched to the '
                'hidden GT of the unlabeled images): ' + ', '.join(
                    f'{n} precision {noisy[n]:.2f} of {kept[n]} kept boxes'
                    for n in subset))
    return _threshold_findings(
        evidence, names, 'noisy_pseudo_labels', problem,
        dict(precision=noisy, kept={n: kept[n] for n in names}),
        _by_cases(min(kept[n] for n in names)))


@finding_rule('gt_without_rpn_positive')
def gt_without_rpn_positive(evidence: Evidence) -> List[Finding]:
    """Classes whose GT boxes get no positive RPN anchor."""
    if not evidence.anchors:
        return []
    hit = {n: r for n, r in evidence.anchors.items()
           if n in evidence.class_names and r.get('no_pos_share') is not None
           and r['no_pos_share'] >= NO_POS_SHARE}
    if not hit:
        return []
    names = sorted(hit, key=lambda n: -hit[n]['no_pos_share'])
    cases = sum(hit[n].get('num_gts', 0) for n in names)
    return [Finding(
        rule='gt_without_rpn_positive',
        title=f'GT boxes of {_fmt_classes(names)} have no positive RPN '
              'anchor',
        strength=_by_cases(cases), impact=_missed_dap(evidence, names),
        impact_metric='mAP50', classes=names,
        evidence=', '.join(
            f'{n}: {hit[n]["no_pos_share"]:.0%} of {hit[n].get("num_gts")} '
            f'GT boxes without a positive anchor ({hit[n]["pos_per_gt"]:.1f} '
            'positives per GT box)' for n in names),
        tool='AnchorMatchStatsHook (anchor_match_stats.jsonl), '
             'tools/anchor_fit.py',
        cause='the anchor shapes (ratios/scales) do not overlap these boxes '
              'at the assigner IoU: the RPN never learns to propose them',
        action='anchors',
        monitor='no_pos_share of these classes in anchor_match_stats.jsonl '
                '(AnchorMatchStatsHook) and their AP50',
        numbers={n: hit[n] for n in names})]


ERROR_CAUSES = {
    'missed': ('no detection reaches these GT boxes (recall)', 'anchors'),
    'background': ('detections on background, far from every GT box',
                   'train_longer'),
    'classification': ('the right box with the wrong class: the classes '
                       'are confused', 'softmax_focal'),
    'localization': ('the right class, a box too loose (IoU 0.1-0.5)',
                     'train_longer'),
    'duplicate': ('several detections on one GT box (NMS)', 'nms'),
    'both': ('wrong class and loose box', 'train_longer'),
}


@finding_rule('dominant_error')
def dominant_error(evidence: Evidence) -> List[Finding]:
    """Per class the error type costing most AP50 (one finding per type)."""
    rows = [r for r in evidence.errors or [] if r.get('class') != 'all']
    groups: Dict[str, Dict[str, float]] = {}
    counts: Dict[str, Dict[str, int]] = {}
    for row in rows:
        costs = {t: row.get(f'dap_{t}', 0.0) for t in ERROR_CAUSES}
        kind = max(costs, key=costs.get)
        if costs[kind] >= MIN_ERROR_DAP:
            groups.setdefault(kind, {})[row['class']] = costs[kind]
            counts.setdefault(kind, {})[row['class']] = row.get(f'n_{kind}', 0)
    out = []
    for kind, per_class in groups.items():
        names = sorted(per_class, key=lambda n: -per_class[n])
        cause, action = ERROR_CAUSES[kind]
        n_cases = sum(counts[kind].values())
        impact = sum(per_class.values()) / max(1, len(rows))
        out.append(Finding(
            rule='dominant_error',
            title=f'{kind} errors cost {_fmt_classes(names)} the most AP50',
            strength=_by_cases(n_cases), impact=impact,
            impact_metric='mAP50', classes=names,
            evidence=', '.join(f'{n}: +{per_class[n]:.3f} AP50 if fixed '
                               f'({counts[kind][n]} errors)' for n in names)
            + f'; mAP50 +{impact:.3f}',
            tool='tools/error_breakdown.py', cause=cause, action=action,
            monitor=f'dAP50 of {kind} errors for these classes '
                    '(tools/error_breakdown.py on the new predictions)',
            numbers=dict(type=kind, dap50=per_class, errors=counts[kind])))
    return out


@finding_rule('score_threshold_mismatch')
def score_threshold_mismatch(evidence: Evidence) -> List[Finding]:
    """Classes whose best-F1 score threshold is far from the deployed one."""
    sweep = evidence.sweep
    if not sweep or 'all' not in sweep:
        return []
    deployed = sweep['all'].get('deployed_thr')
    if deployed is None:
        return []
    far = {n: r for n, r in sweep.items() if n != 'all'
           and r.get('best_f1_thr') is not None
           and abs(r['best_f1_thr'] - deployed) >= THRESHOLD_GAP}
    if not far:
        return []
    names = sorted(far)
    return [Finding(
        rule='score_threshold_mismatch',
        title=f'the {deployed:g} score threshold does not suit '
              f'{_fmt_classes(names)}',
        strength='moderate', impact=None, classes=names,
        evidence=', '.join(
            f'{n}: best F1 {far[n]["best_f1"]:.2f} at {far[n]["best_f1_thr"]:.2f}'
            f' vs {far[n]["f1_at_deployed"]:.2f} at {deployed:g}'
            for n in names),
        tool='tools/threshold_sweep.py',
        cause='one confidence threshold for classes the model scores '
              'differently (deployment only: mAP is unaffected)',
        action='deploy_thresholds',
        monitor='per-class F1 at the deployed thresholds',
        numbers={n: far[n] for n in names})]


@finding_rule('low_efficiency')
def low_efficiency(evidence: Evidence) -> List[Finding]:
    """Classes whose AP is far below their share of the labeled boxes."""
    rows = [r for r in evidence.efficiency or []
            if r.get('status') == 'critical']
    if not rows:
        return []
    names = [r['class'] for r in rows]
    return [Finding(
        rule='low_efficiency',
        title=f'{_fmt_classes(names)}: AP far below their share of the '
              'labeled boxes',
        strength='weak', impact=None, classes=names,
        evidence=', '.join(f'{r["class"]}: AP {r["ap"]:.3f} with '
                           f'{r["share"]:.0%} of the boxes '
                           f'({r["efficiency"]:.2f}x)' for r in rows),
        tool='tools/class_efficiency.py',
        cause='more labeled boxes do not help these classes: look at the '
              'anchor, pseudo-label and error findings for them',
        action='none',
        monitor='efficiency of these classes after each change',
        numbers={r['class']: dict(ap=r['ap'], share=r['share'],
                                  efficiency=r['efficiency']) for r in rows})]


@finding_rule('loss_unstable')
def loss_unstable(evidence: Evidence) -> List[Finding]:
    """LossStabilityHook alarms and non-finite losses."""
    out = []
    if evidence.nonfinite:
        out.append(Finding(
            rule='loss_unstable', title='the loss became NaN/inf',
            strength='certain', impact=None, classes=[],
            evidence=evidence.nonfinite[0], tool='LossStabilityHook',
            cause='divergence: learning rate, loss weights or bad boxes',
            action='lower_lr', monitor='LossStabilityHook warnings',
            numbers=dict(warnings=len(evidence.nonfinite))))
    alarms = []
    for rec in evidence.stability or []:
        for key, v in (rec.get('losses') or {}).items():
            if v.get('level_alarm') or v.get('noise_alarm'):
                alarms.append((rec.get('iter'), key, v))
    if alarms:
        it, key, v = alarms[0]
        what = (f'median {v["level"]:.3g}, {v["rise"]:+.0%} above its best '
                f'window' if v.get('level_alarm') else
                f'noise {v.get("noise_ratio", float("nan")):.1f}x its best '
                'window\'s')
        out.append(Finding(
            rule='loss_unstable',
            title=f'{key} became unstable at iteration {it}',
            strength='strong', impact=None, classes=[],
            evidence=f'{len(alarms)} unstable window(s); first at iteration '
                     f'{it}: {key} {what}', tool='LossStabilityHook '
            '(loss_stability.jsonl)',
            cause='an LR too high for this batch, or pseudo labels turning '
                  'to noise (see the pseudo-label findings)',
            action='lower_lr', monitor='LossStabilityHook warnings',
            numbers=dict(windows=len(alarms), first_iter=it, loss=key)))
    return out


@finding_rule('ap_fell_from_best')
def ap_fell_from_best(evidence: Evidence) -> List[Finding]:
    """Classes whose final AP is below the best this run reached."""
    val = evidence.validation
    if not val:
        return []
    fell = {n: val[n] for n in evidence.class_names if n in val
            and val[n].get('ap') is not None
            and val[n].get('best_ap') is not None
            and val[n]['best_ap'] - val[n]['ap'] >= AP_DROP}
    if not fell:
        return []
    names = sorted(fell, key=lambda n: fell[n]['ap'] - fell[n]['best_ap'])
    impact = sum(fell[n]['best_ap'] - fell[n]['ap'] for n in names) / \
        max(1, len(evidence.class_names))
    return [Finding(
        rule='ap_fell_from_best',
        title=f'{_fmt_classes(names)} ended below their best AP',
        strength='moderate', impact=impact, classes=names,
        evidence=', '.join(f'{n}: {fell[n]["ap"]:.3f} at the end vs '
                           f'{fell[n]["best_ap"]:.3f} at iteration '
                           f'{_fmt_iter(fell[n].get("best_iter"))}' for n in names),
        tool='ClassAPTrackerHook (class_ap_history.json)',
        cause='later training (pseudo-label noise, LR) undid what these '
              'classes had learned; or validation noise on few boxes',
        action='save_best',
        monitor='per-class AP progression (class_ap_progression.png)',
        numbers={n: fell[n] for n in names})]


def _fmt_iter(value) -> str:
    return str(int(value)) if isinstance(value, (int, float)) else '?'


def _fmt_thr(value) -> str:
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(f'{v:.2g}' for v in value) + ']'
    if isinstance(value, float) and math.isfinite(value):
        return f'{value:g}'
    return str(value)
