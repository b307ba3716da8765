#!/usr/bin/env python
"""Speed and memory of the validating COCO reader, against json.load.

Writes a synthetic COCO file (``--boxes`` boxes over ``--images`` images,
1333x800, seeded; a few records of every skippable kind planted), then in
this one run measures:

- ``json.load`` of the file (the stdlib, the floor the issue names);
- :func:`mmext.data.load_coco` (parse + validate + columns), in-process;
- the whole tool ``tools/anchor_fit.py --ann F --scale 1333 800
  --num-ratios 0`` as a subprocess, ``--repeats`` times: median wall
  seconds and the peak RSS.

Example:
    python benchmarks/coco_reader.py --boxes 1000000 --images 100000
"""
import argparse
import gc
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def write_coco(path: str, num_boxes: int, num_images: int, seed: int = 0):
    """A COCO file like a large defect set, with 5 planted bad records."""
    rng = np.random.default_rng(seed)
    w, h = 1333, 800
    bw = np.exp(rng.uniform(np.log(4), np.log(w / 2), num_boxes))
    bh = np.minimum(bw * np.exp(rng.normal(-0.3, 0.9, num_boxes)), h - 1)
    x = rng.uniform(0, w - bw)
    y = rng.uniform(0, h - bh)
    images = [dict(id=i + 1, file_name=f'{i:07d}.jpg', width=w, height=h)
              for i in range(num_images)]
    anns = [dict(id=k + 1, image_id=int(k % num_images) + 1,
                 category_id=int(k % 5) + 1,
                 bbox=[round(float(x[k]), 2), round(float(y[k]), 2),
                       round(float(bw[k]), 2), round(float(bh[k]), 2)],
                 area=round(float(bw[k] * bh[k]), 2), iscrowd=0)
            for k in range(num_boxes)]
    anns[0]['bbox'] = [1, 2, 'x', 4]
    anns[1]['image_id'] = -7
    anns[2]['category_id'] = 99
    anns[3]['bbox'] = [10, 10, 0.5, 20]
    anns[4]['bbox'] = [w - 5, 10, 50, 20]
    cats = [dict(id=c + 1, name=f'defect_{c}') for c in range(5)]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)


def run_measured(cmd: list):
    """Wall seconds and peak RSS (GB) of a command. The peak is the child's
    own VmHWM, polled: getrusage would count the pages the child shared
    with this process (which holds the parsed file) before its exec."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak_kb = 0
    while proc.poll() is None:
        try:
            with open(f'/proc/{proc.pid}/status') as f:
                for line in f:
                    if line.startswith('VmHWM'):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    if proc.returncode:
        raise SystemExit(f'{" ".join(cmd)} failed (exit {proc.returncode})')
    return time.perf_counter() - start, peak_kb / 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--boxes', type=int, default=1_000_000)
    p.add_argument('--images', type=int, default=100_000)
    p.add_argument('--file', help='use (or write) this COCO file')
    p.add_argument('--repeats', type=int, default=5,
                   help='runs of the whole tool (median; this machine '
                   'varies by +-1 s run to run)')
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix='coco_reader_')
    path = args.file or osp.join(tmp, 'coco.json')
    if not osp.isfile(path):
        print(f'writing {args.boxes:,} boxes in {args.images:,} images to '
              f'{path} ...', flush=True)
        write_coco(path, args.boxes, args.images)
    print(f'file: {osp.getsize(path) / 1e6:.0f} MB')

    start = time.perf_counter()
    with open(path) as f:
        parsed = json.load(f)
    t_json = time.perf_counter() - start
    del parsed

    from mmext.data import load_coco
    start = time.perf_counter()
    table = load_coco(path)
    t_reader = time.perf_counter() - start
    print(f'load_coco: {len(table):,} boxes kept, '
          f'{len(table.skipped)} records skipped or repaired: '
          f'{table.skip_counts()}')

    del table  # the tool runs alone, not next to this process's copy
    gc.collect()
    cmd = [sys.executable, osp.join(ROOT, 'tools/anchor_fit.py'), '--ann',
           path, '--scale', '1333', '800', '--num-ratios', '0', '--out-dir',
           osp.join(tmp, 'anchor_fit'), '--no-progress']
    runs = [run_measured(cmd) for _ in range(args.repeats)]
    times = sorted(t for t, _ in runs)
    t_tool = float(np.median(times))
    rss_gb = max(r for _, r in runs)

    print(f'json.load (stdlib, the floor): {t_json:6.2f} s')
    print(f'load_coco (parse + validate):  {t_reader:6.2f} s  '
          f'= {t_reader / t_json:.2f}x json.load')
    print(f'anchor_fit --ann, whole tool:  {t_tool:6.2f} s  '
          f'= {t_tool / t_json:.2f}x json.load (median of {len(times)}: '
          f'{", ".join(f"{t:.1f}" for t in times)} s); peak RSS '
          f'{rss_gb:.2f} GB (goal: <= 10 s and <= 1 GB)')
    print(f'load: {os.getloadavg()[0]:.1f} (1-min load average; 2 cores)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
