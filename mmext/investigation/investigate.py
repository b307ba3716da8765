"""Investigate a training run: evidence from every analysis that applies,
findings ranked, one change at a time written as a config.

The steps live in their own modules: :mod:`.evidence` (what the work_dir
holds, analysed), :mod:`.findings` (the rules), :mod:`.actions` (configs,
measured effects, the control) and :mod:`.render` (the Markdown report).
:func:`investigate` runs them and writes ``report.md``, ``findings.json`` and
the action configs under ``<work_dir>/investigation``.
"""
import os
import os.path as osp

from mmext.investigation.actions import write_actions
from mmext.investigation.evidence import (DEFAULT_DEPLOY_THR,  # noqa: F401
                                          Context, gather_evidence)
from mmext.investigation.findings import apply_rules
from mmext.investigation.render import (problem_rows, problem_summary,
                                        render_markdown)
from mmext.runs import files

__all__ = ['Context', 'DEFAULT_DEPLOY_THR', 'investigate']


#: Cases per class and error type in the investigation's gallery.
GALLERY_K = 6


def write_finding_gallery(ctx: Context) -> None:
    """The error gallery of the predictions under ``out_dir/gallery``, for
    the pictures beside each finding; skipped (with the reason) when the
    images cannot be found."""
    inputs = ctx.extras.get('breakdown')
    if inputs is None:
        return
    from mmext.evaluation.ground_truth import gt_image_dir
    from mmext.utils import MMExtError
    from mmext.viz.error_gallery import write_gallery
    gt, dets, breakdown = inputs
    try:
        img_dir = gt_image_dir(gt, ctx.img_dir,
                               ctx.config_path if ctx.cfg else None,
                               ctx.data_root)
    except MMExtError as exc:
        ctx.skip('error gallery', str(exc))
        return
    written = write_gallery(gt, dets, breakdown, img_dir,
                            osp.join(ctx.out_dir, 'gallery'), GALLERY_K)
    if written['unreadable']:
        ctx.skip('error gallery (some images)',
                 f'{len(written["unreadable"])} image(s) unreadable, e.g. '
                 f'{written["unreadable"][0]}')
    ctx.extras['gallery'] = {osp.basename(p) for p in written['images']}


def investigate(ctx: Context, progress: bool = True) -> dict:
    """Gather evidence, rank findings, write actions and the report.

    Returns:
        The findings.json content; ``report.md`` and ``findings.json`` are
        written to ``ctx.out_dir``, action configs to ``ctx.out_dir/actions``.
    """
    from mmext.utils.tables import write_json
    gather_evidence(ctx, progress)
    findings = apply_rules(ctx.evidence)
    actions = write_actions(ctx, findings)
    os.makedirs(ctx.out_dir, exist_ok=True)
    write_finding_gallery(ctx)
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
