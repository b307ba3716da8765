"""A tiny YOLO dataset in Ultralytics' documented format, and the same data
written by hand as COCO json.

The ``ultralytics`` package cannot be the oracle here: it imports
torchvision, and the only torchvision this machine's package index offers for
torch 2.13 (0.28.0) is a CUDA build whose ops do not register against the
CPU torch (``RuntimeError: operator torchvision::nms does not exist``). So
the files follow Ultralytics' documentation (docs.ultralytics.com/datasets/
detect) and the 8.4 source it describes (``check_det_dataset``,
``img2label_paths``, ``verify_image_label``, ``DetectionValidator.
pred_to_json``), and every expected pixel box below is computed by hand from
``(cx - w/2) * W`` etc., not by the reader.
"""
import json
import os

from PIL import Image

#: The data.yaml exactly as Ultralytics documents it (``test:`` left empty).
DATA_YAML = """\
# Ultralytics YOLO dataset, see https://docs.ultralytics.com/datasets/detect/
# Train/val/test sets as 1) dir: path/to/imgs, 2) file: path/to/imgs.txt, or 3) list
path: defects # dataset root dir
train: train.txt # train images (relative to 'path')
val: images/val # val images (relative to 'path')
test: # test images (optional)

# Classes
names:
  0: rust
  1: chip
  2: scratch
"""

NAMES = ('rust', 'chip', 'scratch')

#: val images: file -> (stored width, stored height, format, EXIF orientation)
VAL_IMAGES = {
    '0001.jpg': (64, 48, 'JPEG', None),
    'img_b.png': (100, 60, 'PNG', None),
    'bg.jpg': (50, 50, 'JPEG', None),       # no label file: background
    'empty.png': (30, 70, 'PNG', None),     # empty label file: background
    'rot.jpg': (80, 40, 'JPEG', 6),         # EXIF 6: decoded 40 x 80
}

VAL_LABELS = {
    '0001.txt': [
        '0 0.5 0.5 0.25 0.5',       # 24 12 40 36
        '2 0.1 0.9 0.3 0.3',        # -3.2 36 16 50.4 -> clipped 0 36 16 48
        '',                         # blank line: ignored
        '5 0.5 0.5 0.1 0.1',        # line 4: class index not in names
        '1 0.5 0.5 0.1',            # line 5: wrong number of values
        '1 0.5 abc 0.1 0.1',        # line 6: non-numeric value
        '1 nan 0.5 0.1 0.1',        # line 7: non-finite coordinate
        '1 0.5 0.5 0 0.1',          # line 8: width or height <= 0
        '1 1.2 0.5 0.1 0.1',        # line 9: outside [0, 1]
        '0 0.5 0.5 0.25 0.50',      # line 10: repeat of line 1
        '1.5 0.5 0.5 0.1 0.1',      # line 11: class index not an integer
        '1 0.5 0.5 0.1 0.1 0.2',    # line 12: 6 values: wrong number
    ],
    'img_b.txt': [
        '1 0.3 0.4 0.2 0.5',                        # 20 9 40 39
        '0 0.6 0.2 0.9 0.2 0.9 0.8 0.6 0.8',        # segment: 60 12 90 48
        '1.0 0.7 0.5 0.2 0.2',                      # class '1.0': 60 24 80 36
    ],
    'empty.txt': [],
    'rot.txt': ['0 0.5 0.25 0.5 0.25'],             # on 40 x 80: 10 10 30 30
}

#: Hand-computed pixel boxes (label, x1, y1, x2, y2) per val image file.
VAL_BOXES = {
    '0001.jpg': [(0, 24, 12, 40, 36), (2, 0, 36, 16, 48)],
    'img_b.png': [(1, 20, 9, 40, 39), (0, 60, 12, 90, 48),
                  (1, 60, 24, 80, 36)],
    'bg.jpg': [],
    'empty.png': [],
    'rot.jpg': [(0, 10, 10, 30, 30)],
}
#: Decoded (width, height) per val image.
VAL_SIZES = {'0001.jpg': (64, 48), 'img_b.png': (100, 60),
             'bg.jpg': (50, 50), 'empty.png': (30, 70), 'rot.jpg': (40, 80)}
#: COCO image ids of the hand-written COCO version (not the YOLO ids).
COCO_IDS = {'0001.jpg': 101, 'img_b.png': 102, 'bg.jpg': 103,
            'empty.png': 104, 'rot.jpg': 105}
#: COCO category ids of the hand-written version (not index + 1).
COCO_CATS = (10, 20, 30)

#: The val label skips (reason -> count) and the repaired records.
VAL_SKIPS = {
    'class index not in names': 1, 'wrong number of values': 2,
    'non-numeric value': 1, 'non-finite coordinate': 1,
    'width or height <= 0': 1, 'normalised coordinate outside [0, 1]': 1,
    'duplicate label line': 1, 'class index not an integer': 1,
    'clipped to the image': 1, 'segment read as its box': 1,
    'unreadable image': 1,
}


def _image(path, w, h, fmt, orientation=None, seed=0):
    img = Image.new('RGB', (w, h), (40 + seed * 30 % 200, 90, 140))
    kwargs = {}
    if orientation:
        exif = Image.Exif()
        exif[274] = orientation
        kwargs['exif'] = exif
    img.save(path, fmt, **kwargs)


def make_yolo_dataset(tmp_path) -> dict:
    """Write the dataset under ``tmp_path`` (yaml beside the ``defects`` root).

    Returns:
        dict with ``yaml``, ``root`` and ``coco`` (the val split written by
        hand as COCO json).
    """
    tmp_path = str(tmp_path)
    root = os.path.join(tmp_path, 'defects')
    for sub in ('images/val', 'labels/val', 'images/train', 'labels/train'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for k, (name, (w, h, fmt, orient)) in enumerate(VAL_IMAGES.items()):
        _image(os.path.join(root, 'images/val', name), w, h, fmt, orient, k)
    with open(os.path.join(root, 'images/val/broken.jpg'), 'wb') as f:
        f.write(b'not a jpeg at all')
    with open(os.path.join(root, 'labels/val/broken.txt'), 'w') as f:
        f.write('0 0.5 0.5 0.2 0.2\n')
    for name, lines in VAL_LABELS.items():
        with open(os.path.join(root, 'labels/val', name), 'w') as f:
            f.write('\n'.join(lines) + ('\n' if lines else ''))
    # train: a .txt list, './' and plain relative lines, one missing image
    for name in ('t1.jpg', 't2.jpg'):
        _image(os.path.join(root, 'images/train', name), 40, 40, 'JPEG')
    with open(os.path.join(root, 'labels/train/t1.txt'), 'w') as f:
        f.write('0 0.5 0.5 0.5 0.5\n0 0.25 0.25 0.2 0.2\n')
    with open(os.path.join(root, 'labels/train/t2.txt'), 'w') as f:
        f.write('1 0.5 0.5 0.5 0.25\n2 0.2 0.8 0.2 0.2\n')
    with open(os.path.join(root, 'train.txt'), 'w') as f:
        f.write('./images/train/t1.jpg\nimages/train/t2.jpg\n'
                './images/train/gone.jpg\n')
    yaml_path = os.path.join(tmp_path, 'data.yaml')
    with open(yaml_path, 'w') as f:
        f.write(DATA_YAML)
    return dict(yaml=yaml_path, root=root,
                coco=write_coco_by_hand(os.path.join(tmp_path, 'val.json')))


def write_coco_by_hand(path: str) -> str:
    """The val split as COCO json: integer ids, category ids 10/20/30."""
    images = [dict(id=COCO_IDS[n], file_name=n, width=w, height=h)
              for n, (w, h) in VAL_SIZES.items()]
    anns = []
    for name, boxes in VAL_BOXES.items():
        for label, x1, y1, x2, y2 in boxes:
            anns.append(dict(id=len(anns) + 1, image_id=COCO_IDS[name],
                             category_id=COCO_CATS[label],
                             bbox=[x1, y1, x2 - x1, y2 - y1],
                             area=(x2 - x1) * (y2 - y1), iscrowd=0))
    cats = [dict(id=c, name=n) for c, n in zip(COCO_CATS, NAMES)]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return path


def ultralytics_image_id(file_name: str):
    """``DetectionValidator.pred_to_json``'s id: int(stem) if numeric."""
    stem = os.path.splitext(file_name)[0]
    return int(stem) if stem.isnumeric() else stem
