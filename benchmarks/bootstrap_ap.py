#!/usr/bin/env python
"""Speed of the paired bootstrap of per-class AP (tools/compare_runs.py).

A synthetic validation set of --images images and 5 classes, two arms of
detections (--dets per image), matched once by pycocotools; then
--resamples paired resamples of per-class AP@[.5:.95] and AP50. Prints the
time of each part and, as the baseline measured in the same run, one
pycocotools COCOeval evaluate+accumulate: the bootstrap costs that many
COCOevals (a naive bootstrap re-runs COCOeval per resample: --resamples x 2
arms x 2 metrics). Requirement: 1,000 resamples of 500 images in under a
minute on the 2-core machine.

Example:
    python benchmarks/bootstrap_ap.py --images 500 --resamples 1000
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=500)
    parser.add_argument('--dets', type=int, default=100,
                        help='detections per image (100)')
    parser.add_argument('--resamples', type=int, default=1000)
    args = parser.parse_args(argv)
    from mmext.evaluation.bootstrap_ap import eval_matches, paired_bootstrap
    from mmext.evaluation.coco_match import (coco_from_detections,
                                           coco_from_table, run_cocoeval)
    from mmext.evaluation.predictions import Detections
    from mmext.data import load_coco
    rng = np.random.default_rng(0)
    names = ['Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear', 'Scratched']
    images, anns = [], []
    for i in range(args.images):
        images.append(dict(id=i + 1, file_name=f'{i}.png', width=640,
                           height=640))
        for _ in range(int(rng.integers(1, 8))):
            x, y = rng.uniform(0, 560, 2)
            w, h = rng.uniform(10, 80, 2)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=int(rng.integers(1, 6)),
                             bbox=[x, y, w, h], area=w * h, iscrowd=0))
    gt_boxes = {}
    for a in anns:
        gt_boxes.setdefault(a['image_id'], []).append(a)

    def detections(seed):
        r = np.random.default_rng(seed)
        rows = []
        for i in range(1, args.images + 1):
            for a in gt_boxes.get(i, []):
                x, y, w, h = a['bbox']
                j = r.normal(0, 3, 4)
                rows.append((i, a['category_id'] - 1, r.uniform(0.3, 1),
                             x + j[0], y + j[1], x + w + j[2], y + h + j[3]))
            for _ in range(args.dets - len(gt_boxes.get(i, []))):
                x, y = r.uniform(0, 600, 2)
                rows.append((i, int(r.integers(0, 5)), r.uniform(0, 0.6),
                             x, y, x + 30, y + 30))
        a = np.array(rows, float)
        return Detections(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64),
                          a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6])

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'gt.json')
        with open(path, 'w') as f:
            json.dump(dict(images=images, annotations=anns, categories=[
                dict(id=k + 1, name=n) for k, n in enumerate(names)]), f)
        gt = load_coco(path, names)
    coco = coco_from_table(gt)
    arms = [detections(1), detections(2)]
    start = time.perf_counter()
    evals = [run_cocoeval(coco, coco_from_detections(coco, d)) for d in arms]
    t_eval = (time.perf_counter() - start) / 2
    start = time.perf_counter()
    matches = [eval_matches(ev) for ev in evals]
    t_read = time.perf_counter() - start
    start = time.perf_counter()
    for iou in (None, 0.5):
        paired_bootstrap([matches[0]], [matches[1]], names, args.resamples,
                         0, iou)
    t_boot = time.perf_counter() - start
    total = t_read + t_boot
    print(f'{args.images} images x {args.dets} detections, 5 classes, '
          f'{args.resamples} paired resamples of AP and AP50')
    print(f'pycocotools evaluate+accumulate (baseline): {t_eval:.2f} s per arm')
    print(f'reading the matches: {t_read:.2f} s; bootstrap: {t_boot:.2f} s; '
          f'total {total:.1f} s (requirement < 60 s)')
    print(f'= {total / t_eval:.1f} COCOevals; a COCOeval per resample would '
          f'take {4 * args.resamples * t_eval:.0f} s '
          f'({4 * args.resamples * t_eval / total:.0f}x longer)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
