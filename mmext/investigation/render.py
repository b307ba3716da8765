"""The investigation report in the user's shape: the problem in numbers,
findings, likely causes, actions with their measured effect, what to
monitor, how to test an action, what was skipped."""
import math
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmext.investigation.actions import Action
from mmext.investigation.evidence import Context
from mmext.investigation.findings import Evidence, Finding

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
        errors = [r for r in ev.errors or [] if r.get('class') != 'all']
        if errors:
            worst = sorted(errors, key=lambda r: r.get('ap50', 0.0))[:2]
            total = next((r for r in ev.errors if r.get('class') == 'all'), {})
            return ('No validation was logged; from the predictions: mAP50 '
                    f'{_num(total.get("ap50"))}, worst classes ' + ', '.join(
                        f'{r["class"]} {_num(r.get("ap50"))}' for r in worst)
                    + ' (AP50).')
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


#: The error-gallery kinds that show each rule's boxes.
RULE_PICTURES = {
    'gt_without_rpn_positive': ('missed',),
    'teacher_cannot_detect': ('missed',),
    'pseudo_starved': ('missed',),
    'noisy_pseudo_labels': ('background', 'classification'),
    'low_efficiency': ('missed', 'classification'),
}


def finding_pictures(rule: str, classes: List[str], numbers: dict,
                     drawn: set) -> List[str]:
    """The gallery PNGs (names under ``gallery/``) of a finding's classes
    and kinds: a dominant error's own type, else :data:`RULE_PICTURES`.

    Args:
        rule: The finding's rule; ``classes``, ``numbers``: its fields.
        drawn: The PNG names the gallery holds.
    """
    from mmext.viz.error_gallery import gallery_file_name
    kinds = ((numbers.get('type'),) if rule == 'dominant_error'
             else RULE_PICTURES.get(rule, ()))
    names = [gallery_file_name(str(c), k) for c in classes for k in kinds
             if k]
    return [n for n in names if n in drawn]


def render_markdown(ctx: Context, findings: List[Finding],
                    actions: List[Action]) -> str:
    """The report in the user's shape: problem, findings, causes, actions,
    what to monitor, what was skipped."""
    from mmext.utils.tables import format_markdown
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
        pictures = finding_pictures(f.rule, f.classes, f.numbers,
                                    ctx.extras.get('gallery') or set())
        if pictures:
            lines.append('   Pictures: ' + ', '.join(
                f'[{name[:-4].replace("_", " ")}](gallery/{name})'
                for name in pictures) + '.')
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
    from mmext.utils.config import dataset_ann_path
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
