"""Per-class efficiency: how much AP a class gets for its share of the data.

    share_c      = boxes_c / sum of boxes (training annotations, not ignored)
    efficiency_c = AP_c / share_c

A class with 27.6% of the boxes and AP 0.006 has efficiency 0.02x; one with
16.2% and AP 0.252 has 1.56x. Sorted worst first, with a status word from
configurable thresholds, so "the classes with the most data perform worst"
is one glance.
"""
import math
from typing import Dict, List, Sequence, Tuple


from mmext.utils import MMExtError

#: Efficiency limits between the status words, low to high.
DEFAULT_STATUS_THRESHOLDS = (0.25, 0.75, 1.25)
#: One word per band: below the first limit, ..., above the last.
STATUS_WORDS = ('critical', 'weak', 'ok', 'strong')


def status_word(efficiency: float,
                thresholds: Sequence[float] = DEFAULT_STATUS_THRESHOLDS
                ) -> str:
    """The status of an efficiency: 'critical' < t0 <= 'weak' < t1 ...

    Args:
        efficiency: AP / share (NaN for a class without AP).
        thresholds: Three increasing limits (default 0.25, 0.75, 1.25).
    """
    if efficiency is None or math.isnan(efficiency):
        return 'no AP'
    if math.isinf(efficiency):
        return 'no train boxes'
    band = sum(efficiency >= t for t in thresholds)
    return STATUS_WORDS[band]


def check_status_thresholds(thresholds: Sequence[float]) -> Tuple[float, ...]:
    """Validate the three increasing status limits.

    Raises:
        ValueError: not three increasing, non-negative numbers.
    """
    t = tuple(float(x) for x in thresholds)
    if len(t) != len(STATUS_WORDS) - 1 or any(
            a >= b for a, b in zip(t, t[1:])) or t[0] < 0:
        raise ValueError(f'status thresholds {t}: need '
                         f'{len(STATUS_WORDS) - 1} increasing numbers >= 0')
    return t


def check_ap_values(ap: Dict[str, float], source: str) -> None:
    """AP must be a fraction in [0, 1] (NaN or negative: no AP, allowed).

    Raises:
        MMExtError: an AP above 1 or infinite: likely a percentage (COCO
            tools print 55.9 for 0.559), which would make every class look
            "strong".
    """
    bad = {n: v for n, v in ap.items() if v is not None
           and not math.isnan(v) and (math.isinf(v) or v > 1)}
    if bad:
        name, value = next(iter(bad.items()))
        raise MMExtError(
            f'{source}: AP of {name} is {value} (AP is a fraction in [0, 1]; '
            f'{len(bad)} class(es) above 1: given in percent?)')


def class_efficiency(counts: Dict[str, int], ap: Dict[str, float],
                     source: str = 'model',
                     thresholds: Sequence[float] = DEFAULT_STATUS_THRESHOLDS
                     ) -> List[dict]:
    """Efficiency table of one model, sorted worst first.

    Args:
        counts: Training boxes per class name.
        ap: AP per class name (COCO AP@[.5:.95] from CocoMetric classwise).
        source: Name of the model/evaluation (e.g. 'teacher').
        thresholds: Status limits, see :func:`status_word`.

    Returns:
        Dicts with ``source``, ``class``, ``boxes``, ``share`` (fraction),
        ``ap``, ``efficiency`` (None without AP) and ``status``.
    """
    thresholds = check_status_thresholds(thresholds)
    check_ap_values(ap, source)
    total = sum(counts.values())
    rows = []
    for name, n in counts.items():
        share = n / total if total else 0.0
        value = ap.get(name, float('nan'))
        value = float('nan') if value is None or value < 0 else float(value)
        if math.isnan(value):
            eff = float('nan')
        else:
            eff = value / share if share else float('inf')
        rows.append(dict(source=source, **{'class': name}, boxes=int(n),
                         share=share, ap=value, efficiency=eff,
                         status=status_word(eff, thresholds)))
    # worst first; classes without AP last
    rows.sort(key=lambda r: (math.isnan(r['efficiency']), r['efficiency']))
    return rows


def count_ap_correlation(rows: List[dict]) -> float:
    """Spearman correlation of box count and AP (< 0: more data, worse AP)."""
    pairs = [(r['boxes'], r['ap']) for r in rows if not math.isnan(r['ap'])]
    if len(pairs) < 3:
        return float('nan')
    from scipy.stats import spearmanr  # 1.3 s of imports: only when ranked
    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return float(rho)


def efficiency_cells(row: dict) -> dict:
    """A row formatted like the user's table: '27.6%', '0.02x'."""
    eff = row['efficiency']
    return dict(
        source=row['source'],
        **{'class': row['class']},
        boxes=str(row['boxes']),
        share=f"{100 * row['share']:.1f}%",
        ap='-' if math.isnan(row['ap']) else f"{row['ap']:.3f}",
        efficiency=('-' if math.isnan(eff) else
                    'inf' if math.isinf(eff) else f'{eff:.2f}x'),
        status=row['status'])
