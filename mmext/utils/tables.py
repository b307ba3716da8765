"""Tables for people (aligned text, Markdown) and files for machines (CSV, JSON)."""
import csv
import json
import math
import os
from typing import Dict, List, Optional, Sequence


def fmt(value, digits: int = 3) -> str:
    """A cell: floats rounded, None/NaN as '-'."""
    if value is None:
        return '-'
    if isinstance(value, float):
        if math.isnan(value):
            return '-'
        return f'{value:.{digits}f}'
    return str(value)


def format_table(rows: List[Dict], columns: Sequence[str],
                 headers: Optional[Sequence[str]] = None,
                 digits: int = 3) -> str:
    """Rows as a text table with a header and aligned columns.

    Args:
        rows: One dict per row.
        columns: Keys to show, in order.
        headers: Column titles (default: the keys).
        digits: Decimals for floats.
    """
    headers = list(headers or columns)
    cells = [[fmt(r.get(c), digits) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells])
              for i, h in enumerate(headers)]
    lines = ['  '.join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append('  '.join('-' * w for w in widths))
    for r, row in zip(rows, cells):
        # numbers right-aligned, text left-aligned
        lines.append('  '.join(
            c.rjust(w) if _is_number(r.get(col), c) else c.ljust(w)
            for col, c, w in zip(columns, row, widths)).rstrip())
    return '\n'.join(lines)


def _is_number(value, cell: str) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    # preformatted numbers such as '27.6%' or '0.02x'
    return bool(cell) and cell.rstrip('%x').replace('.', '', 1).isdigit()


def format_markdown(rows: List[Dict], columns: Sequence[str],
                    headers: Optional[Sequence[str]] = None,
                    digits: int = 3) -> str:
    """Rows as a Markdown table."""
    headers = list(headers or columns)
    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '|'.join(' --- ' for _ in headers) + '|']
    for r in rows:
        lines.append('| ' + ' | '.join(fmt(r.get(c), digits)
                                       for c in columns) + ' |')
    return '\n'.join(lines)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, 'item') and hasattr(obj, 'dtype'):  # numpy scalar
        return _json_safe(obj.item())
    return obj


def write_json(obj, path: str) -> str:
    """Write ``obj`` as JSON (NaN/inf become null); returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(_json_safe(obj), f, indent=2)
    return path


def write_csv(rows: List[Dict], path: str,
              columns: Optional[Sequence[str]] = None) -> str:
    """Write rows as CSV (empty cells for None); returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    columns = list(columns or (rows[0].keys() if rows else []))
    with open(path, 'w', newline='', encoding='utf-8') as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        w.writeheader()
        for r in rows:
            w.writerow({c: '' if r.get(c) is None else r.get(c)
                        for c in columns})
    return path


def skip_summary(counts: Dict[str, int], what: str) -> str:
    """One line per skip reason, e.g. ``skipped 3 detections: NaN score``."""
    return '\n'.join(f'skipped {n} {what}: {reason}'
                     for reason, n in sorted(counts.items()))
