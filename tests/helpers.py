"""Helpers for tests: the demo config shrunk to seconds per run."""
import os

from mmengine.config import Config

from mmext.engine.tiny_config import (DEMO_CONFIG,  # noqa: F401
                                      tiny_semi_config)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEU_DET = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'neu-det')


def free_port() -> int:
    """A TCP port on localhost that is free right now (for torchrun)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_torchrun_training(cfg: Config, cfg_path: str, work_dir: str,
                          nproc: int = 2, pythonpath: tuple = ()):
    """Train ``cfg`` with ``tools/train.py`` under torchrun (gloo on CPU).

    Args:
        cfg: Config to dump to ``cfg_path`` and train.
        cfg_path: Where to write the config (a ``.py`` file).
        work_dir: The run's work_dir.
        nproc: Number of processes.
        pythonpath: Extra folders for the workers' PYTHONPATH (test hooks).

    Returns:
        The finished ``subprocess.CompletedProcess`` (stdout/stderr as text).
    """
    import subprocess
    import sys
    cfg.dump(cfg_path)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(
            [*pythonpath, os.environ.get('PYTHONPATH', '')])
    return subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run',
         f'--nproc_per_node={nproc}', f'--master_port={free_port()}',
         'tools/train.py', cfg_path, '--launcher', 'pytorch',
         '--work-dir', work_dir],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def read_scalars(work_dir: str) -> list:
    """Every record of the run's ``vis_data/scalars.json`` files, in order."""
    from mmext.runs.scalars import scalar_records
    return list(scalar_records(work_dir))


def read_log_text(work_dir: str) -> str:
    """The run's text logs (``<work_dir>/<timestamp>/<timestamp>.log``) joined."""
    import glob
    text = ''
    for path in sorted(glob.glob(os.path.join(work_dir, '*', '*.log'))):
        with open(path) as f:
            text += f.read()
    return text
