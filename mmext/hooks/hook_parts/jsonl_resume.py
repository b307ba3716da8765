"""JSON-lines resume: a hook's record files follow the resumed iteration.

At the start of training every file is cut to the records with
``iter <= runner.iter``: on resume the records up to the checkpoint stay and
the resumed run writes the rest once; a fresh run (``runner.iter == 0``)
starts them empty.
"""
import json
import os
from typing import List, Optional

from .failure_isolation import IsolatedFailures


def truncate_jsonl(path: str, last_iter: int) -> Optional[int]:
    """Keep the records of a JSON-lines file with ``iter <= last_iter``.

    Lines that are not JSON objects (e.g. the torn tail of a killed run) are
    dropped with the later records.

    Args:
        path: The file; nothing happens when it does not exist.
        last_iter: Last iteration to keep (1-based, as the records count).

    Returns:
        The number of records kept, or None when there is no file.
    """
    if not os.path.isfile(path):
        return None
    kept = []
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(
                    record.get('iter'), int) and record['iter'] <= last_iter:
                kept.append(json.dumps(record) + '\n')
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(kept)
    return len(kept)


class JsonlResume(IsolatedFailures):
    """Piece: the files of :meth:`jsonl_files` are cut at ``before_train``."""

    def jsonl_files(self, runner) -> List[str]:
        """JSON-lines files this process appends records (``iter``) to."""
        return []

    def _on_train_start(self, runner) -> None:
        super()._on_train_start(runner)
        for path in self.jsonl_files(runner):
            truncate_jsonl(path, runner.iter)
