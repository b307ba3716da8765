"""Read an Ultralytics YOLO dataset (``data.yaml`` + ``labels/*.txt``) into a
:class:`BoxTable`, validating it once.

The format, as Ultralytics documents and reads it (``ultralytics.data.utils``
8.4: ``check_det_dataset``, ``img2label_paths``, ``verify_image_label``,
``exif_size``):

- ``data.yaml``: ``path`` (dataset root; optional, default the yaml's folder;
  a relative root is looked up beside the yaml first, then in the current
  folder), ``train`` / ``val`` / ``test`` (each a folder of images, searched
  recursively, a ``.txt`` list of image paths, or a list of these, relative to
  the root; ``validation`` is read as ``val``), ``names`` (a list, or a dict
  ``{index: name}`` with indices 0..n-1) and optional ``nc`` (with ``names``
  it must equal their number; alone it names the classes ``class_0``...).
  Paths in a ``.txt`` list that are relative are taken relative to the list's
  folder (Ultralytics does so for ``./`` lines).
- For an image ``.../images/<split>/x.jpg`` the labels are in
  ``.../labels/<split>/x.txt`` (the last ``/images/`` becomes ``/labels/``,
  the extension ``.txt``). Each line is ``class cx cy w h``, normalised to
  the image size. An image without a label file, or with an empty one, has no
  boxes (a background image).
- Image sizes come from the image files (PIL reads only the header), with
  Ultralytics' ``exif_size`` rule: EXIF orientation 5-8 swaps width and
  height, which is also the size cv2 and mmcv decode.

Validation, as for the COCO reader: a ``data.yaml`` that cannot be used
(missing, not YAML, no ``names`` nor ``nc``, a name twice, bad indices, the
split missing or pointing nowhere, no images) is one-line
:class:`~mmext.utils.MMExtError` naming the file and the field. A label line
that cannot be used is skipped and counted (``SkippedRecord`` with the label
file, ``line N`` and the reason): wrong number of values, a non-number, a
class index that is not an integer or not in ``names``, a non-finite value,
width or height <= 0, a coordinate outside [0, 1] by more than Ultralytics'
tolerance of 0.01, a box entirely outside the image, and an exact repeat of
an earlier line of the same file (Ultralytics drops those). A box sticking
out of the image is clipped and counted as repaired. A segment line (class
and three or more x y points) is read as the box around its points, as
Ultralytics' ``segments2boxes`` does, and counted as repaired; in a pose
dataset (``kpt_shape`` in the yaml) the keypoints after the box are dropped,
as Ultralytics does for a detection task. A missing or
unreadable image is skipped, with its labels, and counted.

Image ids are Ultralytics' ``predictions.json`` ids: ``int(stem)`` for an
all-digit file stem, else the stem. Where every id is a distinct integer
they are the table's ``image_ids``; otherwise images are numbered in order and
the ids kept in ``BoxTable.image_keys``. Two images of a split with one stem
(``a/x.jpg``, ``b/x.png``) cannot be told apart by ``image_id``: both keep
their path as key, are counted (``'duplicate file stem'``, kept) and are
matched to predictions by ``file_name`` only where that is unique.
"""
import glob
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils import MMExtError
from .box_table import BoxTable, SkippedRecord, check_box, table_from_columns

#: Image extensions Ultralytics reads (``ultralytics.data.utils.IMG_FORMATS``).
IMG_FORMATS = ('avif', 'bmp', 'dng', 'heic', 'heif', 'jp2', 'jpeg', 'jpg',
               'mpo', 'png', 'tif', 'tiff', 'webp')
SPLITS = ('train', 'val', 'test')
#: Normalised coordinates may leave [0, 1] by this much (Ultralytics' 1%).
COORD_TOLERANCE = 0.01


@dataclass
class YoloData:
    """A parsed ``data.yaml``.

    Attributes:
        path: The yaml file.
        root: Dataset root folder (absolute).
        names: Class names, index = YOLO class index.
        splits: ``{split: [absolute folder or .txt list, ...]}``.
        kpt_values: Keypoint values per line of a pose dataset
            (``kpt_shape`` [n, dim]: n * dim; 0 otherwise).
    """
    path: str
    root: str
    names: Tuple[str, ...]
    splits: Dict[str, List[str]] = field(default_factory=dict)
    kpt_values: int = 0


def parse_yolo_source(source: str) -> Optional[Tuple[str, Optional[str]]]:
    """``'data.yaml'`` -> ``('data.yaml', None)``, ``'data.yaml:val'`` ->
    ``('data.yaml', 'val')``; None for a source that is not a YOLO yaml."""
    source = str(source)
    head, sep, tail = source.rpartition(':')
    if sep and head.lower().endswith(('.yaml', '.yml')) and tail \
            and not os.path.exists(source):
        return head, tail
    if source.lower().endswith(('.yaml', '.yml')):
        return source, None
    return None


def _fail(path: str, problem: str) -> None:
    raise MMExtError(f'{path}: {problem}')


def _names(data: dict, path: str) -> Tuple[str, ...]:
    names, nc = data.get('names'), data.get('nc')
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int)
                           or nc < 1):
        _fail(path, f"'nc' must be a positive integer, got {nc!r}")
    if names is None:
        if nc is None:
            _fail(path, "no 'names' (nor 'nc'): the class names are missing")
        return tuple(f'class_{i}' for i in range(nc))
    if isinstance(names, dict):
        try:
            by_index = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            _fail(path, "'names': keys must be class indices 0..n-1, got "
                  f'{list(names)}')
        if sorted(by_index) != list(range(len(by_index))):
            _fail(path, "'names': indices must be 0..n-1, got "
                  f'{sorted(by_index)}')
        names = [by_index[i] for i in range(len(by_index))]
    if not isinstance(names, list) or not names:
        _fail(path, "'names' must be a non-empty list or {index: name} dict, "
              f'got {names!r}')
    out = []
    seen: Dict[str, int] = {}
    for i, name in enumerate(names):
        if name is None or (isinstance(name, str) and not name.strip()):
            _fail(path, f"'names'[{i}]: empty class name")
        name = str(name)  # Ultralytics: non-string names become strings
        if name in seen:
            _fail(path, f"'names'[{i}]: {name!r} also at index {seen[name]} "
                  '(two classes of one name)')
        seen[name] = i
        out.append(name)
    if nc is not None and nc != len(out):
        _fail(path, f"'nc' is {nc} but 'names' has {len(out)} entries")
    return tuple(out)


def _root(data: dict, path: str) -> str:
    here = os.path.dirname(os.path.abspath(path))
    value = data.get('path')
    if value is None or value == '':
        return here
    if not isinstance(value, str):
        _fail(path, f"'path' must be a folder name, got {value!r}")
    if os.path.isabs(value):
        candidates = [value]
    else:
        candidates = [os.path.join(here, value), os.path.abspath(value)]
    for cand in candidates:
        if os.path.isdir(cand):
            return os.path.abspath(cand)
    _fail(path, f"'path': dataset root {value!r} not found (looked in "
          f'{", ".join(candidates)})')


def _split_entries(data: dict, key: str, root: str, path: str) -> List[str]:
    value = data[key]
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str) or not item:
            _fail(path, f"'{key}' must be a path or a list of paths, got "
                  f'{value!r}')
        entry = os.path.normpath(os.path.join(root, item))
        if not os.path.exists(entry) and item.startswith('../'):
            entry = os.path.normpath(os.path.join(root, item[3:]))
        out.append(entry)
    return out


def read_data_yaml(path: str) -> YoloData:
    """Parse and check a YOLO ``data.yaml`` (see the module docstring).

    Raises:
        MMExtError: the file is missing, not YAML or not a usable data.yaml;
            the message names the file and the field.
    """
    import yaml
    if not os.path.isfile(path):
        _fail(path, 'no such file')
    try:
        with open(path, encoding='utf-8-sig') as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
        _fail(path, f'not YAML ({type(exc).__name__}: {first})')
    if not isinstance(data, dict):
        _fail(path, "not a YOLO data.yaml (expected a mapping with 'names' "
              "and 'train'/'val')")
    if 'val' not in data and 'validation' in data:
        data['val'] = data['validation']
    names = _names(data, path)
    root = _root(data, path)
    splits = {k: _split_entries(data, k, root, path) for k in SPLITS
              if data.get(k)}
    kpt = data.get('kpt_shape')
    if kpt is not None and not (
            isinstance(kpt, list) and len(kpt) == 2
            and all(isinstance(v, int) and v > 0 for v in kpt)):
        _fail(path, f"'kpt_shape' must be [keypoints, dims], got {kpt!r}")
    return YoloData(path=path, root=root, names=names, splits=splits,
                    kpt_values=kpt[0] * kpt[1] if kpt else 0)


def _is_image(name: str) -> bool:
    return name.rpartition('.')[-1].lower() in IMG_FORMATS


def split_image_files(data: YoloData, split: str) -> List[str]:
    """Every image file of a split, sorted (Ultralytics' order).

    Raises:
        MMExtError: the split is not in the yaml, an entry does not exist,
            or the split holds no image.
    """
    if split not in data.splits:
        have = ', '.join(data.splits) or 'none'
        _fail(data.path, f"no '{split}' split (field '{split}'; the file has: "
              f'{have})')
    files = []
    for entry in data.splits[split]:
        if os.path.isdir(entry):
            files += [f for f in glob.glob(
                os.path.join(glob.escape(entry), '**', '*.*'), recursive=True)
                if os.path.isfile(f)]
        elif os.path.isfile(entry):
            with open(entry, encoding='utf-8-sig') as f:
                lines = [x.strip() for x in f.read().strip().splitlines()]
            parent = os.path.dirname(entry)
            files += [x if os.path.isabs(x) else
                      os.path.normpath(os.path.join(parent, x))
                      for x in lines if x]
        else:
            _fail(data.path, f"'{split}': {entry} does not exist")
    files = sorted(f for f in files if _is_image(f))
    if not files:
        _fail(data.path, f"'{split}': no images in "
              f'{", ".join(data.splits[split])}')
    return files


def img2label_path(img_path: str) -> str:
    """Ultralytics' ``img2label_paths`` for one image: the last ``/images/``
    becomes ``/labels/`` and the extension ``.txt``."""
    sa, sb = f'{os.sep}images{os.sep}', f'{os.sep}labels{os.sep}'
    return sb.join(img_path.rsplit(sa, 1)).rsplit('.', 1)[0] + '.txt'


def exif_size(img) -> Tuple[int, int]:
    """``(width, height)`` of a PIL image as decoded: EXIF orientation 5-8
    (a transpose or a quarter turn) swaps them, as Ultralytics'
    ``exif_size`` does and cv2 / mmcv decode."""
    size = img.size
    try:
        if img.getexif().get(274) in (5, 6, 7, 8):
            size = size[::-1]
    except Exception:  # noqa: BLE001 (PIL raises many types on bad EXIF)
        pass
    return int(size[0]), int(size[1])


def image_size(path: str) -> Tuple[Optional[Tuple[int, int]], str]:
    """``((width, height), '')`` or ``(None, reason)`` for one image file."""
    from PIL import Image
    if not os.path.isfile(path):
        return None, 'image missing'
    try:
        with Image.open(path) as img:
            w, h = exif_size(img)
    except Exception:  # noqa: BLE001 (PIL raises many types on bad files)
        return None, 'unreadable image'
    if w < 1 or h < 1:
        return None, 'unreadable image'
    return (w, h), ''


def image_key(img_path: str):
    """Ultralytics' ``image_id``: ``int(stem)`` for an all-digit stem."""
    stem = os.path.splitext(os.path.basename(img_path))[0]
    if stem.isnumeric():
        try:
            return int(stem)
        except ValueError:  # other Unicode digits
            pass
    return stem


def _parse_line(values: List[str],
                kpt_values: int = 0) -> Tuple[str, Optional[tuple], bool]:
    """``(problem, (cls, cx, cy, w, h), segment)`` of one label line (a pose
    line, ``5 + kpt_values`` values, is read as its box)."""
    if kpt_values and len(values) == 5 + kpt_values:
        values = values[:5]
    n = len(values)
    segment = n > 6 and (n - 1) % 2 == 0
    if n != 5 and not segment:
        return 'wrong number of values', None, False
    try:
        nums = [float(v) for v in values]
    except ValueError:
        return 'non-numeric value', None, segment
    cls = nums[0]
    if not np.isfinite(cls) or cls != int(cls):
        return 'class index not an integer', None, segment
    coords = np.array(nums[1:])
    if not np.isfinite(coords).all():
        return 'non-finite coordinate', None, segment
    if segment:
        xy = coords.reshape(-1, 2)
        lo, hi = xy.min(0), xy.max(0)
        cx, cy = (lo + hi) / 2
        w, h = hi - lo
    else:
        cx, cy, w, h = coords
    if w <= 0 or h <= 0:
        return 'width or height <= 0', None, segment
    if coords.min() < -COORD_TOLERANCE or coords.max() > 1 + COORD_TOLERANCE:
        return 'normalised coordinate outside [0, 1]', None, segment
    return '', (int(cls), float(cx), float(cy), float(w), float(h)), segment


def _read_labels(label_path: str, width: float, height: float,
                 cls_to_label: Dict[int, int], num_names: int,
                 skipped: List[SkippedRecord],
                 kpt_values: int = 0) -> List[tuple]:
    """Boxes ``(label, x1, y1, x2, y2)`` of one label file (none if absent)."""
    if not os.path.isfile(label_path):
        return []
    try:
        with open(label_path, encoding='utf-8-sig') as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        skipped.append(SkippedRecord(label_path, 'file',
                                     f'unreadable label file ({exc})'))
        return []
    boxes, seen = [], set()
    for lineno, line in enumerate(lines, 1):
        values = line.split()
        if not values:
            continue
        rec = f'line {lineno}'
        problem, parsed, segment = _parse_line(values, kpt_values)
        if not problem:
            cls = parsed[0]
            if not 0 <= cls < num_names:
                problem = 'class index not in names'
            elif cls not in cls_to_label:
                problem = 'category not in the classes'
            elif tuple(map(float, values)) in seen:
                problem = 'duplicate label line'
        if problem:
            skipped.append(SkippedRecord(label_path, rec, problem))
            continue
        seen.add(tuple(map(float, values)))
        cls, cx, cy, w, h = parsed
        problem, xyxy = check_box((cx - w / 2) * width, (cy - h / 2) * height,
                                  (cx + w / 2) * width, (cy + h / 2) * height,
                                  width, height)
        if problem and problem != 'clipped to the image':
            skipped.append(SkippedRecord(label_path, rec, problem))
            continue
        if segment:
            skipped.append(SkippedRecord(label_path, rec,
                                         'segment read as its box', kept=True))
        if problem:
            skipped.append(SkippedRecord(label_path, rec, problem, kept=True))
        boxes.append((cls_to_label[cls], *xyxy))
    return boxes


def _image_keys(files: List[str], root: str,
                skipped: List[SkippedRecord], source: str) -> list:
    keys = [image_key(f) for f in files]
    counts = Counter(keys)
    out = []
    for f, key in zip(files, keys):
        if counts[key] > 1:
            skipped.append(SkippedRecord(
                source, _rel(f, root),
                'duplicate file stem (image_id ambiguous)', kept=True))
            key = _rel(f, root)
        out.append(key)
    return out


def _rel(path: str, root: str) -> str:
    rel = os.path.relpath(path, root)
    return path if rel.startswith('..') else rel


def load_yolo(path: str, split: str = 'train',
              class_names: Optional[Sequence[str]] = None) -> BoxTable:
    """Read one split of a YOLO dataset (see the module docstring).

    Args:
        path: The ``data.yaml``.
        split: ``'train'``, ``'val'`` or ``'test'``.
        class_names: Keep only these classes, in this order (a config's
            ``metainfo.classes``); default: ``names`` in index order.

    Returns:
        A BoxTable whose ``file_names`` are relative to the dataset root
        (absolute for images outside it) and whose ``source`` is
        ``'<path>:<split>'``.

    Raises:
        MMExtError: the yaml or the split cannot be used (one line naming
            the file and the field).
    """
    data = read_data_yaml(path)
    files = split_image_files(data, split)
    names = data.names if class_names is None else tuple(class_names)
    if len(set(names)) != len(names):
        _fail(path, f'class names repeat: {list(names)}')
    index = {n: i for i, n in enumerate(names)}
    cls_to_label = {k: index[n] for k, n in enumerate(data.names)
                    if n in index}
    source = f'{path}:{split}'
    skipped: List[SkippedRecord] = []
    keys_all = _image_keys(files, data.root, skipped, source)
    keys, file_names, widths, heights = [], [], [], []
    box_rows: List[tuple] = []
    for img_path, key in zip(files, keys_all):
        size, problem = image_size(img_path)
        if size is None:
            skipped.append(SkippedRecord(img_path, 'image', problem))
            continue
        n = len(keys)
        keys.append(key)
        file_names.append(_rel(img_path, data.root))
        widths.append(size[0])
        heights.append(size[1])
        for box in _read_labels(img2label_path(img_path), size[0], size[1],
                                cls_to_label, len(data.names), skipped,
                                data.kpt_values):
            box_rows.append((n, *box))
    int_keys = all(isinstance(k, int) for k in keys) and \
        len(set(keys)) == len(keys)
    image_ids = (np.array(keys, dtype=np.int64) if int_keys else
                 np.arange(len(keys), dtype=np.int64))
    rows = np.array(box_rows, dtype=np.float64).reshape(-1, 6)
    img = rows[:, 0].astype(np.int64)
    widths_a = np.array(widths, dtype=np.float64)
    heights_a = np.array(heights, dtype=np.float64)
    return table_from_columns(
        class_names=names, image_id=image_ids[img],
        label=rows[:, 1].astype(np.int64), boxes=rows[:, 2:6],
        img_w=widths_a[img], img_h=heights_a[img],
        ignore=np.zeros(len(rows), dtype=bool), image_ids=image_ids,
        file_names=file_names, widths=widths_a, heights=heights_a,
        source=source, skipped=skipped,
        image_keys=None if int_keys else keys)


def yolo_category_labels(path: str, class_names: Sequence[str],
                         base: int = 1) -> Dict[int, int]:
    """``{category_id: label}`` of Ultralytics' ``predictions.json``.

    Ultralytics 8.4 writes ``category_id = class index + 1`` for a non-COCO
    dataset (``class_map = range(1, nc + 1)``); 8.0 releases wrote the index
    itself: ``base`` is 1 or 0 accordingly.

    Args:
        path: The ``data.yaml`` (its ``names`` give the class indices).
        class_names: The ground truth table's class names (label order).
        base: ``category_id`` of class index 0.
    """
    if base not in (0, 1):
        raise MMExtError(f'YOLO category base must be 0 or 1, got {base}')
    names = read_data_yaml(path).names
    index = {n: i for i, n in enumerate(class_names)}
    return {k + base: index[n] for k, n in enumerate(names) if n in index}
