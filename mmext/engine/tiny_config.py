"""The demo Soft Teacher config shrunk to seconds per run (smoke runs).

Used by the tests and the overhead benchmarks, which must not import tests/.
"""
import os
import uuid

from mmengine.config import Config

#: The demo config shipped in configs/.
DEMO_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    'configs', 'soft_teacher', 'soft-teacher_faster-rcnn_tiny_demo.py')


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
    from .launch import prepare_config
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
