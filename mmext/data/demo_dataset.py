"""A synthetic defect dataset that looks like the user's problem.

Grey brushed-metal textures carrying five procedurally drawn defect classes
with the user's class shares and box shapes (seed 004): Severe_Rust and Chipped
are narrow (h/w median 0.45 and 0.51) and drawn with low contrast, so they are
the hard classes; Broken is a dark high-contrast crack, the easy one.

Written in COCO format: a labeled train split, an unlabeled train split whose
ground truth is kept in a separate file (hidden from training, for measuring
pseudo-label quality), and a val split. Deterministic for a seed.
"""
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Tuple

import cv2
import numpy as np
from mmdet.evaluation.functional import bbox_overlaps


@dataclass(frozen=True)
class DefectClass:
    """How one defect class is drawn.

    Args:
        name: Class name.
        share: Share of all boxes (0-1).
        ratio_median: Median box aspect ratio h/w.
        ratio_log_sigma: Std of log(h/w); P25/P75 = median * exp(-/+0.674 sigma).
        size_px: Range of sqrt(box area) at the 128 px image size.
    """
    name: str
    share: float
    ratio_median: float
    ratio_log_sigma: float
    size_px: Tuple[float, float]


DEMO_CLASSES = (
    # P25-P75 0.34-0.61 around 0.45 -> sigma = ln(0.61/0.45)/0.674 = 0.45
    DefectClass('Severe_Rust', 0.276, 0.45, 0.45, (18, 40)),
    # P25-P75 0.39-0.65 around 0.51 -> sigma = 0.36
    DefectClass('Chipped', 0.192, 0.51, 0.36, (14, 32)),
    DefectClass('Broken', 0.162, 1.0, 0.5, (18, 40)),
    DefectClass('Tip_Wear', 0.189, 1.3, 0.3, (16, 36)),
    DefectClass('Scratched', 0.181, 0.3, 1.2, (16, 40)),
)
CLASS_NAMES = tuple(c.name for c in DEMO_CLASSES)


def metal_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Brushed grey metal: horizontal streaks, a soft light gradient, noise."""
    base = rng.uniform(110, 150)
    streaks = rng.normal(0, 1, (size, size)).astype(np.float32)
    streaks = cv2.GaussianBlur(streaks, (0, 0), sigmaX=9, sigmaY=0.6) * 28
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    light = (np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(-25, 25)
    noise = rng.normal(0, 4, (size, size))
    return base + streaks + light + noise


def _box_shape(rng: np.random.Generator, cls: DefectClass,
               scale: float) -> Tuple[float, float]:
    ratio = float(np.exp(rng.normal(np.log(cls.ratio_median),
                                    cls.ratio_log_sigma)))
    ratio = float(np.clip(ratio, 1 / 12, 12))
    side = rng.uniform(*cls.size_px) * scale
    w, h = side / np.sqrt(ratio), side * np.sqrt(ratio)
    return w, h


def _blob_mask(rng: np.random.Generator, w: int, h: int, rough: float) -> np.ndarray:
    """A random blob filling most of a w x h box (float 0-1)."""
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(1.0, rough))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ell = ((xx - (w - 1) / 2) / (w / 2))**2 + ((yy - (h - 1) / 2) / (h / 2))**2
    return np.clip(1.3 - ell + 0.6 * noise / (noise.std() + 1e-6) * 0.4, 0, 1)


def draw_defect(img: np.ndarray, rng: np.random.Generator, label: int,
                x1: int, y1: int, x2: int, y2: int) -> None:
    """Draw defect ``label`` into the float grey ``img`` inside the box."""
    w, h = x2 - x1, y2 - y1
    patch = img[y1:y2, x1:x2]
    name = CLASS_NAMES[label]
    if name == 'Severe_Rust':
        # Rough dark speckled blob, weak contrast: visually hard.
        mask = _blob_mask(rng, w, h, rough=1.5)
        speckle = rng.normal(0, 1, (h, w)) * 14
        patch += mask * (-rng.uniform(18, 30) + speckle)
    elif name == 'Chipped':
        # A bright flake with a dark rim, low contrast.
        mask = _blob_mask(rng, w, h, rough=2.5)
        rim = cv2.Laplacian(mask.astype(np.float32), cv2.CV_32F, ksize=3)
        patch += mask * rng.uniform(16, 26) + rim * 20
    elif name == 'Broken':
        # Dark jagged crack across the box, high contrast: easy.
        pts = np.stack([
            np.linspace(0, w - 1, 8),
            np.clip((h - 1) / 2 + rng.normal(0, h / 5, 8), 0, h - 1)
        ], 1)
        if h > w:
            pts = np.stack([
                np.clip((w - 1) / 2 + rng.normal(0, w / 5, 8), 0, w - 1),
                np.linspace(0, h - 1, 8)
            ], 1)
        canvas = np.zeros((h, w), np.float32)
        cv2.polylines(canvas, [pts.astype(np.int32)], False, 1.0,
                      thickness=max(2, int(min(w, h) / 5)))
        patch -= canvas * rng.uniform(70, 95)
    elif name == 'Tip_Wear':
        # Smooth bright polished ellipse.
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ell = ((xx - (w - 1) / 2) / (w / 2))**2 + ((yy - (h - 1) / 2) / (h / 2))**2
        patch += np.clip(1 - ell, 0, 1)**0.7 * rng.uniform(45, 65)
    else:
        # Scratched: thin bright line along the box diagonal.
        canvas = np.zeros((h, w), np.float32)
        if rng.random() < 0.5:
            p, q = (0, 0), (w - 1, h - 1)
        else:
            p, q = (0, h - 1), (w - 1, 0)
        cv2.line(canvas, p, q, 1.0, thickness=2)
        patch += cv2.GaussianBlur(canvas, (3, 3), 0) * rng.uniform(50, 70)


def draw_image(rng: np.random.Generator, size: int,
               max_defects: int) -> Tuple[np.ndarray, List[Tuple[int, list]]]:
    """Draw one image; returns (uint8 BGR image, [(label, [x, y, w, h])])."""
    img = metal_texture(rng, size)
    shares = np.array([c.share for c in DEMO_CLASSES])
    scale = size / 128
    anns, placed = [], []
    for _ in range(int(rng.integers(1, max_defects + 1))):
        label = int(rng.choice(len(DEMO_CLASSES), p=shares / shares.sum()))
        for _try in range(20):
            w, h = _box_shape(rng, DEMO_CLASSES[label], scale)
            w, h = int(round(min(w, size - 4))), int(round(min(h, size - 4)))
            if w < 4 or h < 4:
                continue
            x1 = int(rng.integers(1, size - w))
            y1 = int(rng.integers(1, size - h))
            box = np.array([x1, y1, x1 + w, y1 + h])
            if not placed or bbox_overlaps(box[None].astype(np.float32),
                                           np.array(placed, np.float32)).max() < 0.05:
                draw_defect(img, rng, label, x1, y1, x1 + w, y1 + h)
                placed.append(box)
                anns.append((label, [x1, y1, w, h]))
                break
    grey = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), anns


def _coco(images: list, anns: list) -> dict:
    return dict(
        images=images,
        annotations=anns,
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASS_NAMES)])


def make_demo_dataset(out_dir: str,
                      seed: int = 0,
                      num_labeled: int = 160,
                      num_unlabeled: int = 320,
                      num_val: int = 80,
                      image_size: int = 128,
                      max_defects: int = 3) -> Dict[str, str]:
    """Write the demo dataset to ``out_dir``.

    Layout: ``images/{train_labeled,train_unlabeled,val}/*.jpg`` and
    ``annotations/{train_labeled,train_unlabeled,train_unlabeled_gt,val}.json``
    (``train_unlabeled.json`` lists the images only; its ground truth is in
    ``train_unlabeled_gt.json``).

    Args:
        out_dir: Output folder (created).
        seed: Random seed; the same seed writes the same files.
        num_labeled: Images in the labeled train split.
        num_unlabeled: Images in the unlabeled train split.
        num_val: Images in the val split.
        image_size: Square image side in pixels.
        max_defects: Most defects drawn in one image (at least one).

    Returns:
        Paths of the written annotation files by split name.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out_dir, 'annotations'), exist_ok=True)
    splits = (('train_labeled', num_labeled), ('train_unlabeled', num_unlabeled),
              ('val', num_val))
    written, image_id, ann_id = {}, 1, 1
    for split, count in splits:
        img_dir = os.path.join(out_dir, 'images', split)
        os.makedirs(img_dir, exist_ok=True)
        images, anns = [], []
        for k in range(count):
            img, objs = draw_image(rng, image_size, max_defects)
            name = f'{split}_{k:05d}.jpg'
            cv2.imwrite(os.path.join(img_dir, name), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=image_id, file_name=name, width=image_size,
                               height=image_size))
            for label, (x, y, w, h) in objs:
                anns.append(dict(id=ann_id, image_id=image_id,
                                 category_id=label + 1, bbox=[x, y, w, h],
                                 area=w * h, iscrowd=0))
                ann_id += 1
            image_id += 1
        if split == 'train_unlabeled':
            written[split] = _dump(out_dir, split, _coco(images, []))
            written['train_unlabeled_gt'] = _dump(out_dir, 'train_unlabeled_gt',
                                                  _coco(images, anns))
        else:
            written[split] = _dump(out_dir, split, _coco(images, anns))
    return written


def _dump(out_dir: str, name: str, data: dict) -> str:
    path = os.path.join(out_dir, 'annotations', f'{name}.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f)
    return path
