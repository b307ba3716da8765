#!/usr/bin/env python
"""Speed of the threshold sweep against faster-coco-eval and pycocotools.

The sweep (building its COCO objects, one evaluate + accumulate on the
'all' area range with every detection, reading the matches and the
cumulative sums over the threshold grid) is timed, in one run, against
faster-coco-eval's COCOeval_faster evaluate + accumulate and pycocotools'
COCOeval evaluate + accumulate, both with default parameters (inputs already
loaded: the baselines are not charged for building them). Requirements:
sweep / pycocotools <= 2; goal (issue 15): sweep / faster-coco-eval <= 0.5.

Example:
    python benchmarks/threshold_sweep.py --images 5000 --dets 100
    python benchmarks/threshold_sweep.py --images 500   # a quick run
"""
import argparse
import contextlib
import io
import time

import numpy as np
from pycocotools.cocoeval import COCOeval

from mmext.evaluation.coco_match import (coco_from_detections, coco_from_table,
                                       resolve_backend)
from mmext.evaluation.predictions import Detections
from mmext.evaluation.threshold_sweep import sweep_thresholds
from mmext.data import build_box_table

CLASSES = ('Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear', 'Scratched')


def synthetic(num_images: int, dets_per_image: int, seed: int = 0):
    """GT (3 boxes per image on average) and detections near and off them."""
    rng = np.random.default_rng(seed)
    size = 640.0
    images = [dict(id=i + 1, file_name=f'{i}.jpg', width=size, height=size)
              for i in range(num_images)]
    boxes = []
    for im in images:
        for _ in range(rng.integers(1, 6)):
            x, y = rng.uniform(0, 500, 2)
            w, h = rng.uniform(10, 140, 2)
            boxes.append((im['id'], int(rng.integers(0, 5)), x, y, x + w,
                          y + h, False))
    gt = build_box_table(CLASSES, images, boxes, 'synthetic', [])
    n = num_images * dets_per_image
    image_id = np.repeat(np.arange(1, num_images + 1), dets_per_image)
    # a GT box of the detection's own image (boxes are stored image by image)
    first = np.searchsorted(gt.image_id, image_id, side='left')
    count = np.searchsorted(gt.image_id, image_id, side='right') - first
    src = first + (rng.random(n) * count).astype(np.int64)
    near = rng.random(n) < 0.5  # half jitter a GT box of the image, half random
    x1 = np.where(near, gt.x1[src], rng.uniform(0, 500, n))
    y1 = np.where(near, gt.y1[src], rng.uniform(0, 500, n))
    w = np.where(near, gt.x2[src] - gt.x1[src], rng.uniform(10, 140, n))
    h = np.where(near, gt.y2[src] - gt.y1[src], rng.uniform(10, 140, n))
    jitter = rng.normal(0, 6, (n, 2))
    dets = Detections(
        image_id=image_id, label=np.where(near, gt.label[src],
                                          rng.integers(0, 5, n)),
        score=rng.random(n), x1=x1 + jitter[:, 0], y1=y1 + jitter[:, 1],
        x2=x1 + jitter[:, 0] + w, y2=y1 + jitter[:, 1] + h)
    return gt, dets


def time_baseline(gt, dets) -> float:
    """pycocotools COCOeval evaluate + accumulate, default parameters."""
    gt_coco = coco_from_table(gt)
    dt_coco = coco_from_detections(gt_coco, dets)
    ev = COCOeval(gt_coco, dt_coco, 'bbox')
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    return time.perf_counter() - start


def time_faster_coco_eval(gt, dets) -> float:
    """faster-coco-eval COCOeval_faster evaluate + accumulate, defaults."""
    from faster_coco_eval import COCO, COCOeval_faster
    ref = coco_from_detections(coco_from_table(gt), dets)
    silent = lambda *args, **kwargs: None  # noqa: E731
    gt_coco, dt_coco = COCO(print_function=silent), COCO(
        print_function=silent)
    gt_coco.dataset = gt.to_coco()
    dt_coco.dataset = ref.dataset
    gt_coco.createIndex()
    dt_coco.createIndex()
    ev = COCOeval_faster(gt_coco, dt_coco, 'bbox', print_function=silent)
    start = time.perf_counter()
    ev.evaluate()
    ev.accumulate()
    return time.perf_counter() - start


def time_sweep(gt, dets, backend: str = 'auto') -> float:
    start = time.perf_counter()
    sweep_thresholds(gt, dets, backend=backend)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--dets', type=int, default=100,
                        help='detections per image')
    args = parser.parse_args()
    gt, dets = synthetic(args.images, args.dets)
    print(f'{args.images} images, {len(gt)} GT boxes, {len(dets)} detections')
    base = time_baseline(gt, dets)
    fast = time_faster_coco_eval(gt, dets)
    ours = time_sweep(gt, dets)
    print(f'pycocotools COCOeval evaluate+accumulate:          {base:8.2f} s')
    print(f'faster-coco-eval COCOeval_faster evaluate+accumulate: {fast:5.2f} s')
    print(f'threshold sweep (21 thresholds, all, {resolve_backend()}): '
          f'{ours:6.2f} s')
    print(f'ratio sweep / pycocotools:      {ours / base:.2f}  '
          '(requirement <= 2.00)')
    print(f'ratio sweep / faster-coco-eval: {ours / fast:.2f}  '
          '(goal <= 0.50)')


if __name__ == '__main__':
    main()
