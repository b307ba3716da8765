"""WARNING and ERROR lines of a run's text logs, with their iteration."""
import glob
import os
import re
from typing import List

from .scalars import run_folders

LOG_LINE = re.compile(r'^(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) - \S+ - '
                      r'(?P<level>[A-Z]+) - (?P<message>.*)$')
ITER_IN_MESSAGE = re.compile(r'\biter(?:ation)?s?\s*[:=]?\s*(\d+)', re.I)
ITER_IN_PROGRESS = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/')


def read_warnings(work_dir: str) -> List[dict]:
    """Every WARNING line of the run's text logs, with time and iteration.

    The iteration is the one the message names (``iter 1200``), else the
    last ``Iter(train) [N/...]`` progress line before it, else None.
    """
    warnings = []
    for folder in run_folders(work_dir):
        for path in sorted(glob.glob(os.path.join(folder, '*.log'))):
            last_iter = None
            with open(path, errors='replace') as f:
                for line in f:
                    progress = ITER_IN_PROGRESS.search(line)
                    if progress:
                        last_iter = int(progress.group(1))
                    match = LOG_LINE.match(line.rstrip('\n'))
                    if not match or match['level'] not in ('WARNING',
                                                           'ERROR'):
                        continue
                    named = ITER_IN_MESSAGE.search(match['message'])
                    warnings.append(dict(
                        time=match['time'], level=match['level'],
                        iter=int(named.group(1)) if named else last_iter,
                        message=match['message']))
    return warnings
