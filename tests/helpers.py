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


def ddp_probe_run(data_root: str, tmp, probe_module: str, hooks: list,
                  max_iters: int = 4, val_interval: int = 0,
                  edit=None) -> str:
    """The tiny demo under torchrun (2 processes, gloo) with MeanTeacherHook
    and ``hooks``; the workers import ``probe_module`` (a test module of
    tests/test_hooks that registers its probe hooks).

    Args:
        data_root: The tiny demo dataset.
        tmp: A pytest temporary folder (``pathlib.Path``).
        probe_module: Module name the workers import with mmext.
        hooks: Custom hooks after MeanTeacherHook.
        max_iters: Training iterations.
        val_interval: Validate every this many iterations; 0 = never.
        edit: Called with the config before it is dumped.

    Returns:
        The run's work_dir.
    """
    work_dir = str(tmp / 'run')
    cfg = tiny_semi_config(data_root, work_dir, max_iters=max_iters,
                           val_interval=val_interval)
    if edit is not None:
        edit(cfg)
    cfg.custom_imports = dict(imports=['mmext', probe_module],
                              allow_failed_imports=False)
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] == 'MeanTeacherHook'] + list(hooks)
    proc = run_torchrun_training(
        cfg, str(tmp / 'cfg.py'), work_dir,
        pythonpath=(os.path.join(ROOT, 'tests', 'test_hooks'),
                    os.path.join(ROOT, 'tests')))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return work_dir


def append_rank_record(runner, name: str, record: dict) -> None:
    """Append ``record`` to ``<work_dir>/<name>_rank<r>.jsonl``."""
    import json
    from mmengine import dist
    path = os.path.join(runner.work_dir, f'{name}_rank{dist.get_rank()}.jsonl')
    with open(path, 'a') as f:
        f.write(json.dumps(record) + '\n')


def read_rank_records(work_dir: str, name: str, rank: int) -> list:
    """The records :func:`append_rank_record` wrote for ``rank``."""
    import json
    with open(os.path.join(work_dir, f'{name}_rank{rank}.jsonl')) as f:
        return [json.loads(line) for line in f]
