"""Helpers for tests: the demo config shrunk to seconds per run."""
import os
import uuid

from mmengine.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CONFIG = os.path.join(
    ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py')
NEU_DET = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'neu-det')


def tiny_semi_config(data_root: str, work_dir: str, max_iters: int = 4,
                     val_interval: int = 0, config: str = DEMO_CONFIG) -> Config:
    """The demo Soft Teacher config, made fast enough for a unit test.

    Small images (train and test at 96-128 px), no dataloader workers, a
    checkpoint every ``max_iters`` iterations and validation only when
    ``val_interval`` is given.

    Args:
        data_root: Folder written by ``make_demo_dataset``.
        work_dir: Output folder of the run.
        max_iters: Training iterations.
        val_interval: Validate every this many iterations; 0 = never.
        config: Config file to start from.
    """
    from mmext.engine import prepare_config
    cfg = Config.fromfile(config)
    prepare_config(cfg, work_dir=work_dir, data_root=data_root,
                   max_iters=max_iters)
    small = [(160, 96), (160, 128)]
    for ds in cfg.train_dataloader.dataset.datasets:
        for t in ds.pipeline:
            if t['type'] == 'RandomResize':
                t['scale'] = small
            for branch in ('unsup_teacher', 'unsup_student'):
                for sub in t.get(branch, []) or []:
                    if sub['type'] == 'RandomResize':
                        sub['scale'] = small
    for t in cfg.val_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (160, 128)
    cfg.test_dataloader = cfg.val_dataloader
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    # One labeled and two unlabeled images per batch: the unsupervised branch,
    # which most hooks watch, gets the larger share in these short runs.
    cfg.train_dataloader.sampler.source_ratio = [1, 2]
    if val_interval:
        cfg.train_cfg.val_interval = val_interval
    else:
        cfg.train_cfg.val_interval = max_iters + 1
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = max_iters
    # The demo stops on a flat mAP; tests that want it add it themselves.
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] != 'EarlyStoppingHook']
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    # mmengine keeps one logger, MessageHub and visualizer per name, and names
    # them after the start second: several runners in one test process would
    # share them (and write scalars.json into the first run's folder).
    run_name = f'test_{uuid.uuid4().hex[:12]}'
    cfg.experiment_name = run_name
    cfg.visualizer.name = run_name
    return cfg


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
    import glob
    import json
    rows = []
    for path in sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def read_log_text(work_dir: str) -> str:
    """The run's text logs (``<work_dir>/<timestamp>/<timestamp>.log``) joined."""
    import glob
    text = ''
    for path in sorted(glob.glob(os.path.join(work_dir, '*', '*.log'))):
        with open(path) as f:
            text += f.read()
    return text
