"""Start training or testing from a config: the code behind tools/train.py.

Multi-process on a CPU-only torch needs one change to mmengine's launch path:
``mmengine.dist.init_dist`` calls ``torch.cuda.set_device``, which such a
build lacks. Initialising the process group here first (gloo on CPU, nccl on
GPUs) makes mmengine skip its own initialisation.
"""
import os
from typing import List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..utils import MMExtError
from ..utils.config import set_data_root


def init_process_group_from_env(backend: Optional[str] = None) -> None:
    """Initialise torch.distributed from torchrun's environment variables.

    Args:
        backend: ``'gloo'`` or ``'nccl'``; default nccl when CUDA is available,
            else gloo.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        return
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise MMExtError(f'--launcher pytorch: environment variable {key} '
                             'is not set (start the tool with torchrun)')
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    torch_dist.init_process_group(backend=backend)


def close_process_group() -> None:
    """Wait for every process, then tear torch.distributed down.

    Leaving a gloo process group to the interpreter's exit lets its threads be
    destroyed while still joinable, which aborts a worker now and then
    ("terminate called without an active exception", exit code -6).
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def scale_schedule(cfg: Config, max_iters: int) -> None:
    """Set an iteration-based schedule to ``max_iters`` in place.

    Scheduler ends at the old length and milestones scale with it, and
    validation/checkpoint intervals shrink when they exceed the new length.
    """
    old = cfg.train_cfg.get('max_iters')
    if not old:
        raise MMExtError(f'{cfg.filename}: --max-iters needs an IterBasedTrainLoop')
    ratio = max_iters / old
    cfg.train_cfg.max_iters = max_iters
    if cfg.train_cfg.get('val_interval', 0) > max_iters:
        cfg.train_cfg.val_interval = max_iters
    for sched in cfg.get('param_scheduler') or []:
        if sched.get('end') == old:
            sched['end'] = max_iters
        if 'milestones' in sched:
            sched['milestones'] = [max(1, int(m * ratio)) for m in sched['milestones']]
        if sched.get('end', 0) > max_iters:
            sched['end'] = max_iters
    ckpt = cfg.get('default_hooks', {}).get('checkpoint')
    if ckpt and ckpt.get('interval', 0) > max_iters:
        ckpt['interval'] = max_iters


def prepare_config(cfg: Config,
                   work_dir: Optional[str] = None,
                   data_root: Optional[str] = None,
                   max_iters: Optional[int] = None,
                   launcher: str = 'none',
                   resume: Optional[str] = None,
                   load_from: Optional[str] = None) -> Config:
    """Apply the common command-line overrides to a loaded config in place.

    Args:
        cfg: Loaded config.
        work_dir: Output folder; default ``work_dirs/<config name>``.
        data_root: Folder of the dataset (rewrites every dataset/evaluator).
        max_iters: Shorter or longer iteration-based schedule.
        launcher: ``'none'`` or ``'pytorch'`` (torchrun).
        resume: ``'auto'`` (latest checkpoint of work_dir) or a checkpoint.
        load_from: Checkpoint to initialise the weights from.
    """
    if work_dir:
        cfg.work_dir = work_dir
    elif not cfg.get('work_dir'):
        name = os.path.splitext(os.path.basename(cfg.filename or 'run'))[0]
        cfg.work_dir = os.path.join('work_dirs', name)
    if data_root:
        set_data_root(cfg, data_root)
    if max_iters:
        scale_schedule(cfg, max_iters)
    cfg.launcher = launcher
    if load_from:
        cfg.load_from = load_from
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume:
        cfg.resume = True
        cfg.load_from = resume
    return cfg


#: Hooks that only act on training and build the train loop (with its
#: dataloader) in ``before_run``, also when the runner only tests or validates:
#: mmengine's EarlyStoppingHook asserts ``runner.train_loop.stop_training``.
TRAIN_ONLY_HOOKS = ('EarlyStoppingHook', )


def drop_train_only_hooks(cfg: Config) -> List[str]:
    """Remove the train-only hooks from a config that is not trained, in place.

    An evaluation (``tools/test.py``) never trains, so a hook that stops
    training has nothing to do there; mmengine would still build the train
    loop for it, which loads the training data (slow) or fails where the
    config has no train loop or the machine has no training data.

    Args:
        cfg: Loaded config.

    Returns:
        The types of the hooks removed, in config order.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    dropped = [h['type'] for h in hooks if isinstance(h, dict)
               and h.get('type') in TRAIN_ONLY_HOOKS]
    if dropped:
        cfg.custom_hooks = [h for h in hooks if not (
            isinstance(h, dict) and h.get('type') in TRAIN_ONLY_HOOKS)]
    return dropped


def build_runner(cfg: Config) -> Runner:
    """Build the runner the config names (``runner_type``), like mmdet does."""
    if cfg.get('launcher', 'none') != 'none':
        backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
        init_process_group_from_env(backend)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
