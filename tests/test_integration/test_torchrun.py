"""The demo config trains under torchrun with 2 processes (gloo on CPU)."""
import os

import torch

from helpers import run_torchrun_training, tiny_semi_config


def test_two_process_training(tiny_demo_root, tmp_path):
    work_dir = str(tmp_path / 'ddp')
    cfg = tiny_semi_config(tiny_demo_root, work_dir, max_iters=3)
    cfg.log_level = 'INFO'
    proc = run_torchrun_training(cfg, str(tmp_path / 'cfg.py'), work_dir)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # = world size
    assert 'Epoch(train) [1]' not in log and 'Iter(train) [3/3]' in log
    ckpt = torch.load(os.path.join(work_dir, 'iter_3.pth'), weights_only=False)
    assert ckpt['meta']['iter'] == 3
    # DDP saves the unwrapped model: keys without the 'module.' prefix
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])
