#!/usr/bin/env python
"""Speed and memory of exact anchor coverage against mmdet image by image.

Synthetic GT boxes (every size, h/w from about 1/8 to 8) on images of one
size are measured twice: with mmext's windowed exact coverage on all of them,
and with mmdet's AnchorGenerator.grid_priors + MaxIoUAssigner (full IoU
matrix) on a sample of images. Both give the same numbers (checked on the
sample); the script prints seconds, boxes per second, peak memory, the speed
ratio on the same sample, and a linear extrapolation to the target size
(1,000,000 boxes in 100,000 images), stating that it is one.

Example:
    python benchmarks/anchor_coverage.py --boxes 200000 --images 20000 \\
        --size 1333 800 --baseline-images 20
"""
import argparse
import resource
import time
import tracemalloc

import numpy as np

from mmext.anchors import AnchorSpec, anchor_coverage, mmdet_coverage
from mmext.anchors.train_scale import ScaledBoxes

TARGET_BOXES = 1_000_000


def synthetic_boxes(num_boxes: int, num_images: int, width: int, height: int,
                    pad: int, seed: int = 0) -> ScaledBoxes:
    """``num_boxes`` boxes spread evenly over ``num_images`` images."""
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(0, width, num_boxes), rng.uniform(0, height, num_boxes)
    bw = np.exp(rng.uniform(np.log(8), np.log(width / 2), num_boxes))
    bh = np.minimum(bw * np.exp(rng.normal(-0.3, 0.9, num_boxes)), height)
    b = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    b[:, 0::2] = np.clip(b[:, 0::2], 0, width)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, height)
    # Boxes squeezed under 1 px by clipping get 1 px, like a reader would keep.
    b[:, 2] = np.maximum(b[:, 2], b[:, 0] + 1)
    b[:, 3] = np.maximum(b[:, 3], b[:, 1] + 1)
    index = np.arange(num_boxes) % num_images
    ones = np.ones(num_boxes, dtype=np.int64)
    pad_w = -(-width // pad) * pad
    pad_h = -(-height // pad) * pad
    return ScaledBoxes(b, ones * width, ones * height, ones * pad_w, ones * pad_h, index)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--boxes', type=int, default=200_000, help='boxes for mmext (200000)')
    p.add_argument('--images', type=int, help='images (default: boxes / 10)')
    p.add_argument('--size', type=int, nargs=2, default=(1333, 800), metavar=('W', 'H'))
    p.add_argument('--ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0])
    p.add_argument('--baseline-images', type=int, default=20,
                   help='images measured with mmdet image by image (20)')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args()


def main() -> None:
    args = parse_args()
    num_images = args.images or max(1, args.boxes // 10)
    spec = AnchorSpec(ratios=tuple(args.ratios))
    w, h = args.size
    boxes = synthetic_boxes(args.boxes, num_images, w, h, spec.pad_size_divisor)

    # Baseline sample: the first images, same boxes, both implementations.
    sample = boxes.take(boxes.image_index < args.baseline_images)
    # Timed in float32, as training runs it; checked bit for bit in float64.
    t0 = time.perf_counter()
    ref32 = mmdet_coverage(sample, spec, dtype='float32')
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours_sample = anchor_coverage(sample, spec)
    t_ours_sample = time.perf_counter() - t0
    check = sample.image_index < min(3, args.baseline_images)
    ref = mmdet_coverage(sample.take(check), spec)
    same = (np.array_equal(ours_sample.n_assigned[check], ref.n_assigned)
            and np.array_equal(ours_sample.n_pos_iou[check], ref.n_pos_iou)
            and np.abs(ours_sample.max_iou[check] - ref.max_iou).max() <= 1e-12
            and np.abs(ours_sample.max_iou - ref32.max_iou).max() <= 1e-5)

    tracemalloc.start()
    t0 = time.perf_counter()
    cov = anchor_coverage(boxes, spec, progress=not args.no_progress)
    t_all = time.perf_counter() - t0
    peak_traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    per_box = t_all / args.boxes
    per_image_ref = t_ref / args.baseline_images
    scale = TARGET_BOXES / args.boxes
    print(f'anchors: ratios {list(spec.ratios)}, scales {list(spec.scales)}, strides '
          f'{[s[0] for s in spec.strides]}; images {w}x{h} padded to {spec.pad_size_divisor}')
    print(f'{"measure":<44}{"value":>16}')
    print('-' * 60)
    rows = [
        ('mmext boxes / images', f'{args.boxes} / {num_images}'),
        ('mmext exact coverage (s)', f'{t_all:.2f}'),
        ('mmext boxes per second', f'{args.boxes / t_all:,.0f}'),
        ('mmext peak traced memory (MB)', f'{peak_traced / 2**20:.0f}'),
        ('process max RSS incl. torch/mmdet (MB)', f'{rss / 2**20:.0f}'),
        (f'sample: {args.baseline_images} images, boxes', f'{len(sample.bboxes)}'),
        ('sample: mmdet image by image, float32 (s)', f'{t_ref:.2f}'),
        ('sample: mmext (s)', f'{t_ours_sample:.3f}'),
        ('sample: same numbers as mmdet (3 img f64)', 'yes' if same else 'NO'),
        ('speed ratio on the sample (mmdet / mmext)', f'{t_ref / t_ours_sample:,.0f}x'),
        ('speed ratio at full size, per image', f'{per_image_ref * num_images / t_all:,.0f}x'),
        (f'1,000,000 boxes / 100,000 images: mmext (s){"" if scale == 1 else " *"}',
         f'{per_box * TARGET_BOXES:.1f}'),
        ('1,000,000 boxes / 100,000 images: mmdet (h) *',
         f'{per_image_ref * 100_000 / 3600:.1f}'),
    ]
    for name, value in rows:
        print(f'{name:<44}{value:>16}')
    print('* linear extrapolation from the measured time per box (mmext) or per image '
          '(mmdet); run with --boxes 1000000 --images 100000 to measure mmext directly.')
    print(f'mean max IoU {cov.max_iou.mean():.4f}, share >= {spec.pos_iou_thr}: '
          f'{(cov.max_iou >= spec.pos_iou_thr).mean():.4f}')


if __name__ == '__main__':
    main()
