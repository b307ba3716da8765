"""Runner pieces: trusted resume on torch >= 2.6, launching from configs."""
from .concise_log import ConciseLogProcessor
from .launch import (build_runner, close_process_group, drop_train_only_hooks,
                     init_process_group_from_env, prepare_config)
from .runner import (TRUSTED_PREFIX, TrustedResumeRunner, load_trusted_checkpoint,
                     mmengine_checkpoint_loading)

__all__ = [
    'ConciseLogProcessor', 'TrustedResumeRunner', 'TRUSTED_PREFIX', 'load_trusted_checkpoint',
    'mmengine_checkpoint_loading', 'build_runner', 'close_process_group',
    'init_process_group_from_env', 'prepare_config', 'drop_train_only_hooks'
]
