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
