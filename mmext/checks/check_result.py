"""One row of a check report: pass / warn / fail with counts and examples.

The result type of every check in :mod:`mmext.checks` (config, dataset,
pipeline, homography, prediction checks), on one severity scale,
:data:`STATUSES`; ``check_config``'s findings are one-item results
(:class:`~mmext.checks.config_check.ConfigFinding`).
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence

#: Statuses from best to worst; a report's exit code is 1 when any 'fail'.
STATUSES = ('pass', 'info', 'warn', 'fail')


@dataclass
class CheckResult:
    """The outcome of one check on one part of the data.

    Args:
        name: What was checked (``'image missing'``).
        scope: Where (``'train:train_labeled.json'``, ``'pipeline:sup'``).
        status: One of :data:`STATUSES`.
        count: Items that failed the check.
        total: Items checked.
        detail: One line of numbers behind the status.
        examples: A few offending items, each naming the file or sample.
    """
    name: str
    scope: str
    status: str
    count: int
    total: int
    detail: str = ''
    examples: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The result as a JSON-ready dict."""
        return asdict(self)


def make_check(name: str,
               scope: str,
               problems: Sequence[str],
               total: int,
               severity: str = 'fail',
               detail: str = '',
               max_examples: int = 5) -> CheckResult:
    """A check that passes when ``problems`` is empty.

    Args:
        name: What was checked.
        scope: Where it was checked.
        problems: One line per offending item (file, record, sample).
        total: Items checked.
        severity: Status when there is any problem (``'fail'``, ``'warn'``
            or ``'info'``).
        detail: One line of numbers behind the status.
        max_examples: Number of problems kept as examples.
    """
    if severity not in STATUSES:
        raise ValueError(f'severity must be one of {STATUSES}, got {severity!r}')
    status = severity if problems else 'pass'
    return CheckResult(name, scope, status, len(problems), int(total), detail,
                       list(problems[:max_examples]))


def info_check(name: str, scope: str, count: int, total: int,
               detail: str) -> CheckResult:
    """A row that reports a number without judging it (status ``'info'``).

    Args:
        name: What was counted.
        scope: Where.
        count: Items counted.
        total: Items looked at.
        detail: One line explaining the number.
    """
    return CheckResult(name, scope, 'info' if count else 'pass', int(count),
                       int(total), detail)


def worst_status(results: Sequence[CheckResult]) -> str:
    """The worst status among ``results`` (``'pass'`` when empty)."""
    return max((r.status for r in results), key=STATUSES.index, default='pass')


def status_counts(results: Sequence[CheckResult]) -> Dict[str, int]:
    """Number of results per status, every status present."""
    return {s: sum(r.status == s for r in results) for s in STATUSES}
