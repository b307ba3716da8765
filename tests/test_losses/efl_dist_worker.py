"""Run EqualizedFocalLoss on 2 gloo processes (DDP model), save the buffers.

Usage: python efl_dist_worker.py OUT_DIR. Each rank takes its half of every
batch from :func:`make_batches`; rank r writes OUT_DIR/rank{r}.pt with the
loss's buffers. :func:`single_process_buffers` is the reference on the whole
batches.
"""
import os
import sys

import torch

WORLD_SIZE = 2
NUM_CLASSES = 3
STEPS = 3


def make_batches():
    """Features (STEPS, 16, 4) and labels (STEPS, 16) in [0, NUM_CLASSES]."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(STEPS, 16, 4, generator=g)
    # class 2 is rare: few positives, so its gradient ratio stays small
    labels = torch.randint(0, NUM_CLASSES + 1, (STEPS, 16), generator=g)
    labels[labels == 2] = NUM_CLASSES
    labels[:, 0] = 2
    return feats, labels


def make_model():
    torch.manual_seed(1)
    return torch.nn.Linear(4, NUM_CLASSES)


def make_loss():
    from mmext.losses import EqualizedFocalLoss
    return EqualizedFocalLoss(num_classes=NUM_CLASSES, gamma_b=2.0, scale_factor=8.0,
                              alpha=0.25, reduction='sum')


def run_steps(model, loss_fn, feats, labels):
    """Forward/backward every batch (no optimizer step: same weights)."""
    loss_fn.train()
    for x, y in zip(feats, labels):
        model.zero_grad()
        loss_fn(model(x), y).backward()
    return {k: v.clone() for k, v in loss_fn.state_dict().items()}


def single_process_buffers():
    feats, labels = make_batches()
    return run_steps(make_model(), make_loss(), feats, labels)


def _rank_main(rank, out_dir):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{out_dir}/init',
                            rank=rank, world_size=WORLD_SIZE)
    feats, labels = make_batches()
    half = feats.shape[1] // WORLD_SIZE
    part = slice(rank * half, (rank + 1) * half)
    model = torch.nn.parallel.DistributedDataParallel(make_model())
    buffers = run_steps(model, make_loss(), feats[:, part], labels[:, part])
    torch.save(buffers, os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


if __name__ == '__main__':
    import torch.multiprocessing as mp
    mp.spawn(_rank_main, args=(sys.argv[1],), nprocs=WORLD_SIZE, join=True)
