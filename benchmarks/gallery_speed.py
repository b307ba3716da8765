#!/usr/bin/env python
"""Speed of the error gallery: 5,000 images x 100 detections.

Synthetic COCO data (``--images`` images of 200x200 px with 3 boxes each,
``--dets`` detections per image: jittered hits, loose boxes, swapped classes
and background boxes, 5 classes) written as real PNG files. It times, in one
process and one run: the error breakdown (``error_breakdown``, the
baseline), then the gallery (``write_gallery``: choosing the cases and
drawing ``--k`` per class and type; only the drawn crops touch images), and
prints the gallery's seconds and their ratio to the breakdown's.
Requirement: the gallery in at most 30 s on a 2-core CPU.

Example:
    python benchmarks/gallery_speed.py --images 5000 --dets 100
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

if 'mmext' not in sys.modules:
    os.environ['MMEXT_NO_REGISTER'] = '1'

from mmext.data import load_coco  # noqa: E402
from mmext.evaluation.error_breakdown import error_breakdown  # noqa: E402
from mmext.evaluation.predictions import load_detections  # noqa: E402
from mmext.viz.error_gallery import write_gallery  # noqa: E402

SIZE = 200
CLASSES = 5


def synthetic(folder: str, images: int, dets: int, seed: int = 0):
    """Ground truth, results and images of the benchmark (paths)."""
    import cv2
    rng = np.random.default_rng(seed)
    img_dir = os.path.join(folder, 'img')
    os.makedirs(img_dir)
    tile = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    image_rows, anns, results = [], [], []
    for i in range(images):
        name = f'{i:05d}.png'
        cv2.imwrite(os.path.join(img_dir, name), np.roll(tile, i, axis=0))
        image_rows.append(dict(id=i + 1, file_name=name, width=SIZE,
                               height=SIZE))
        boxes = []
        for _ in range(3):
            w, h = rng.uniform(10, 60, 2)
            x, y = rng.uniform(0, SIZE - w), rng.uniform(0, SIZE - h)
            cat = int(rng.integers(1, CLASSES + 1))
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=cat, bbox=[x, y, w, h], area=w * h,
                             iscrowd=0))
            boxes.append((x, y, w, h, cat))
        for d in range(dets):
            x, y, w, h, cat = boxes[d % 3]
            kind = d % 4
            if kind == 1:
                x += w * 0.6  # loose
            elif kind == 2:
                cat = cat % CLASSES + 1  # swapped
            elif kind == 3:
                w, h = rng.uniform(5, 40, 2)
                x, y = rng.uniform(0, SIZE - w), rng.uniform(0, SIZE - h)
            results.append(dict(image_id=i + 1, category_id=cat,
                                bbox=[x + rng.normal(0, 1), y, w, h],
                                score=float(rng.uniform(0, 1))))
    gt_path = os.path.join(folder, 'gt.json')
    with open(gt_path, 'w') as f:
        json.dump(dict(images=image_rows, annotations=anns, categories=[
            dict(id=c + 1, name=f'class_{c}') for c in range(CLASSES)]), f)
    res_path = os.path.join(folder, 'results.json')
    with open(res_path, 'w') as f:
        json.dump(results, f)
    return gt_path, res_path, img_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--dets', type=int, default=100)
    parser.add_argument('--k', type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        gt_path, res_path, img_dir = synthetic(folder, args.images, args.dets)
        print(f'data: {args.images} images, {args.images * args.dets} '
              f'detections written in {time.perf_counter() - start:.1f} s',
              flush=True)
        gt = load_coco(gt_path)
        dets = load_detections(res_path, gt, gt_json=gt_path)
        start = time.perf_counter()
        breakdown = error_breakdown(gt, dets)
        base = time.perf_counter() - start
        print(f'error breakdown (baseline): {base:.1f} s', flush=True)
        start = time.perf_counter()
        out = write_gallery(gt, dets, breakdown, img_dir,
                            os.path.join(folder, 'gallery'), args.k)
        gallery = time.perf_counter() - start
    print(f'gallery: {gallery:.1f} s for {out["cases"]} cases in '
          f'{len(out["images"])} images ({gallery / base:.2f}x the error '
          f'breakdown); requirement <= 30 s: '
          f'{"met" if gallery <= 30 else "NOT met"}')
    return 0 if gallery <= 30 else 1


if __name__ == '__main__':
    sys.exit(main())
