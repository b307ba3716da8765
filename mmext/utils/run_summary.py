"""What a finished demo/training run left in its work_dir, for a summary."""
import glob
import os
from typing import Dict, List, Optional

from .cli import load_json
from .errors import MMExtError


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint mmengine's ``last_checkpoint`` file names, if any."""
    marker = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(marker):
        with open(marker) as f:
            path = f.read().strip()
        if os.path.isfile(path):
            return path
    ckpts = sorted(glob.glob(os.path.join(work_dir, 'iter_*.pth')),
                   key=lambda p: int(p.rsplit('_', 1)[1].split('.')[0]))
    return ckpts[-1] if ckpts else None


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


def read_metrics(path: str) -> Dict[str, float]:
    """Numeric entries of a metrics JSON written by tools/test.py."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise MMExtError(f'{path}: not a metrics JSON object')
    return {k: v for k, v in data.items() if isinstance(v, (int, float))}
