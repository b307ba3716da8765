"""What a finished demo/training run left in its work_dir, for a summary."""
import glob
import os
import re
from typing import Dict, List, Optional



ITER_CHECKPOINT = re.compile(r'^iter_(\d+)\.pth$')


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint mmengine's ``last_checkpoint`` file names, else the
    ``iter_<N>.pth`` with the highest N; None when there is neither.

    A ``last_checkpoint`` that is not text or names a missing file, and
    checkpoint names without an iteration (``best_*.pth`` of
    ``CheckpointHook(save_best=...)``, ``iter_best.pth``) are passed over.
    """
    marker = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(marker):
        with open(marker, errors='replace') as f:
            path = f.read(4096).strip()
        if path and '\x00' not in path and os.path.isfile(path):
            return path
    numbered = []
    for path in glob.glob(os.path.join(work_dir, 'iter_*.pth')):
        match = ITER_CHECKPOINT.match(os.path.basename(path))
        if match:
            numbered.append((int(match.group(1)), path))
    return max(numbered)[1] if numbered else None


def run_files(work_dir: str) -> Dict[str, List[str]]:
    """Logs, metrics, checkpoints and plots under ``work_dir`` by kind."""
    def find(pattern: str) -> List[str]:
        return sorted(glob.glob(os.path.join(work_dir, pattern), recursive=True))

    return {
        'training logs': find('2*/2*.log'),
        'scalars (JSON lines)': find('2*/vis_data/scalars.json'),
        'metrics': find('**/metrics.json'),
        'checkpoints': find('*.pth'),
        'predictions': find('**/*.pkl'),
        'plots': find('**/*.png'),
        'reports': find('**/*.html'),
    }
