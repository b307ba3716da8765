"""Read a COCO detection json into a :class:`BoxTable`, validating it once.

Structure is checked before any number is used: an ``images`` or
``categories`` entry of the wrong type, a duplicate image id, a duplicate
category id or name is an error naming the file, the record and the field
(these change every downstream number, so they are never skipped quietly).
Annotations that cannot be used are skipped and counted, each with its
reason.

Speed: the columns are pulled out of the parsed JSON with one list
comprehension per field and checked with numpy; the per-record Python path
runs only for the records numpy flags (a 1,000,000-box file reads in a few
seconds, see ``benchmarks/coco_reader.py``).
"""
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from ..utils import MMExtError, load_json
from .box_table import BoxTable, SkippedRecord, table_from_columns


def _require(cond: bool, path: str, problem: str) -> None:
    if not cond:
        raise MMExtError(f'{path}: {problem}')


def _is_id(value) -> bool:
    """COCO ids are ints; Ultralytics and others also write strings."""
    return (isinstance(value, (int, str)) and not isinstance(value, bool))


def coco_categories(data: dict, path: str) -> List[Tuple[int, str]]:
    """The ``categories`` of a parsed COCO dict as ``(id, name)`` by id.

    Raises:
        MMExtError: an entry is not an object, its ``id`` is not an integer,
            its ``name`` is not a non-empty string, or an id or a name
            appears twice (two classes of one name would merge silently).
    """
    cats = data.get('categories')
    _require(isinstance(cats, list), path,
             "no 'categories' list (not a COCO detection file)")
    seen_ids: Dict[int, int] = {}
    seen_names: Dict[str, int] = {}
    out = []
    for n, cat in enumerate(cats):
        where = f'categories[{n}]'
        _require(isinstance(cat, dict), path, f'{where} is not an object')
        cid, name = cat.get('id'), cat.get('name')
        _require(isinstance(cid, int) and not isinstance(cid, bool), path,
                 f"{where}: 'id' must be an integer, got {cid!r}")
        _require(isinstance(name, str) and name != '', path,
                 f"{where} (id {cid}): 'name' must be a non-empty string, "
                 f'got {name!r}')
        _require(cid not in seen_ids, path,
                 f'{where}: category id {cid} also in '
                 f'categories[{seen_ids.get(cid)}]')
        _require(name not in seen_names, path,
                 f'{where}: category name {name!r} also in '
                 f'categories[{seen_names.get(name)}] (two classes of one '
                 'name)')
        seen_ids[cid], seen_names[name] = n, n
        out.append((cid, name))
    return sorted(out)


def _images(data: dict, path: str, skipped: List[SkippedRecord]):
    """Image keys, sizes and file names; images without a usable size are
    skipped (their boxes then too)."""
    imgs = data.get('images')
    _require(isinstance(imgs, list), path,
             "no 'images' list (not a COCO detection file)")
    keys, widths, heights, names = [], [], [], []
    seen: Dict[Hashable, int] = {}
    unsized = set()
    for n, im in enumerate(imgs):
        _require(isinstance(im, dict), path, f'images[{n}] is not an object')
        key = im.get('id')
        _require(_is_id(key), path, f"images[{n}]: 'id' must be an integer "
                 f'or a string, got {key!r}')
        _require(key not in seen, path, f'images[{n}]: image id {key!r} '
                 f'also in images[{seen.get(key)}]')
        seen[key] = n
        w, h = im.get('width'), im.get('height')
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   and np.isfinite(v) and v > 0 for v in (w, h)):
            skipped.append(SkippedRecord(path, f'image id {key}',
                                         'image without a size'))
            unsized.add(key)
            continue
        name = im.get('file_name', '')
        keys.append(key)
        widths.append(float(w))
        heights.append(float(h))
        names.append(name if isinstance(name, str) else str(name))
    return keys, np.array(widths), np.array(heights), names, unsized


def _lookup(values: list, table: dict, missing) -> np.ndarray:
    """``table[v]`` for each value (``missing`` for unknown or unhashable)."""
    try:
        return np.array([table.get(v, missing) for v in values],
                        dtype=np.int64)
    except TypeError:  # a list or dict where an id belongs
        out = []
        for v in values:
            try:
                out.append(table.get(v, missing))
            except TypeError:
                out.append(missing)
        return np.array(out, dtype=np.int64)


def _bbox_array(bboxes: list, chunk: int = 8192) -> Tuple[np.ndarray,
                                                          np.ndarray]:
    """(N, 4) float boxes and a mask of rows that are 4 numbers (strings,
    bools and nested values are not numbers here, whatever numpy accepts).

    Rows are converted ``chunk`` at a time so one bad row sends only its
    chunk through the per-value check.
    """
    n = len(bboxes)
    arr = np.full((n, 4), np.nan)
    ok = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        part = bboxes[start:start + chunk]
        try:
            # without a dtype numpy keeps a string or bool visible in the result
            vals = np.array(part)
            if vals.dtype.kind in 'fiu' and vals.shape == (len(part), 4):
                arr[start:start + len(part)] = vals
                ok[start:start + len(part)] = True
                continue
        except (TypeError, ValueError):  # ragged or nested rows
            pass
        for i, b in enumerate(part, start):
            if type(b) is list and len(b) == 4 and all(
                    type(v) in (int, float) for v in b):
                arr[i] = b
                ok[i] = True
    return arr, ok


def _flag(values: list) -> np.ndarray:
    """``iscrowd`` / ``ignore`` as bool (numbers or bools; else False)."""
    try:
        return np.array(values, dtype=np.float64) != 0
    except (TypeError, ValueError):
        return np.array([isinstance(v, (int, float)) and v != 0
                         for v in values], dtype=bool)


def load_coco(path: str,
              class_names: Optional[Sequence[str]] = None) -> BoxTable:
    """Read boxes from a COCO json the way mmdet's CocoDataset reads them.

    Crowd boxes are kept with ``ignore=True`` (mmdet's ``ignore_flag``);
    boxes under 1 px, with non-finite coordinates, outside the image, of an
    unknown category, or in an image without a size are skipped and counted;
    boxes sticking out of the image are clipped (as mmdet's Resize does) and
    counted. Image ids may be integers or strings (Ultralytics writes file
    stems); string ids are numbered in file order and kept in
    ``BoxTable.image_keys``.

    Args:
        path: COCO json file.
        class_names: Keep only these categories, in this order (a config's
            ``metainfo.classes``); default: every category, sorted by id.

    Raises:
        MMExtError: the file is missing, not JSON, not COCO, or malformed
            in a way that would change every number (see module docstring).
    """
    data = load_json(path)
    _require(isinstance(data, dict), path, 'not a COCO json object')
    cats = coco_categories(data, path)
    if class_names is None:
        class_names = [name for _, name in cats]
    _require(len(set(class_names)) == len(class_names), path,
             f'class names repeat: {list(class_names)}')
    name_to_label = {n: i for i, n in enumerate(class_names)}
    cat_to_label = {cid: name_to_label.get(name, -2) for cid, name in cats}
    skipped: List[SkippedRecord] = []
    keys, widths, heights, names, unsized = _images(data, path, skipped)
    anns = data.get('annotations', [])
    _require(anns is None or isinstance(anns, list), path,
             "'annotations' is not a list")
    # an annotation that is not an object is one unusable record: counted
    not_object = np.array([type(a) is not dict for a in anns or []],
                          dtype=bool)
    anns = [a if type(a) is dict else {} for a in anns or []]
    int_keys = all(isinstance(k, int) for k in keys)
    image_ids = (np.array(keys, dtype=np.int64) if int_keys else
                 np.arange(len(keys), dtype=np.int64))
    index = _lookup([a.get('image_id') for a in anns],
                    {k: i for i, k in enumerate(keys)}, -1)
    label = _lookup([a.get('category_id') for a in anns], cat_to_label, -1)
    xywh, is_box = _bbox_array([a.get('bbox') for a in anns])
    crowd = _flag([a.get('iscrowd', 0) for a in anns]) | _flag(
        [a.get('ignore', 0) for a in anns])
    keep = _annotation_mask(anns, path, index, label, xywh,
                            is_box & ~not_object, unsized, skipped)
    img = np.where(index >= 0, index, 0)
    x1, y1 = xywh[:, 0], xywh[:, 1]
    x2, y2 = x1 + xywh[:, 2], y1 + xywh[:, 3]
    w_img = widths[img] if len(widths) else np.zeros(len(anns))
    h_img = heights[img] if len(heights) else np.zeros(len(anns))
    keep &= _box_mask(anns, path, keep, x1, y1, x2, y2, w_img, h_img,
                      skipped)
    cx1, cy1 = np.maximum(x1, 0), np.maximum(y1, 0)
    cx2, cy2 = np.minimum(x2, w_img), np.minimum(y2, h_img)
    table = table_from_columns(
        class_names=class_names, image_id=image_ids[img[keep]],
        label=label[keep], boxes=np.stack([cx1, cy1, cx2, cy2], 1)[keep],
        img_w=w_img[keep], img_h=h_img[keep], ignore=crowd[keep],
        image_ids=image_ids, file_names=names, widths=widths,
        heights=heights, source=path, skipped=skipped,
        image_keys=None if int_keys else keys)
    table.category_labels = {c: k for c, k in cat_to_label.items() if k >= 0}
    return table


def _ann_record(anns: list, i: int) -> str:
    aid = anns[i].get('id')
    return f'annotation id {aid}' if _is_id(aid) else f'annotations[{i}]'


def _annotation_mask(anns: list, path: str, index: np.ndarray,
                     label: np.ndarray, xywh: np.ndarray, is_box: np.ndarray,
                     unsized: set, skipped: List[SkippedRecord]) -> np.ndarray:
    """Annotations with a known, sized image, a known class and 4 numbers."""
    keep = (index >= 0) & (label >= 0) & is_box
    for i in np.flatnonzero(~keep):
        if not anns[i]:
            reason = 'annotation is not an object'
        elif index[i] < 0:
            iid = anns[i].get('image_id')
            hashable = _is_id(iid)
            reason = ('image without a size' if hashable and iid in unsized
                      else 'unknown image id')
        elif label[i] == -1:
            reason = 'unknown category id'
        elif label[i] == -2:
            reason = 'category not in the classes'
        else:
            reason = 'bbox is not [x, y, w, h] numbers'
        skipped.append(SkippedRecord(path, _ann_record(anns, i), reason))
    label[label < 0] = 0
    return keep


def _box_mask(anns: list, path: str, usable: np.ndarray, x1, y1, x2, y2,
              w_img, h_img, skipped: List[SkippedRecord]) -> np.ndarray:
    """mmdet's rules for one box, vectorised: skip (counted) or clip."""
    w, h = x2 - x1, y2 - y1
    with np.errstate(invalid='ignore'):
        reasons = [
            (~np.isfinite(np.stack([x1, y1, x2, y2], 1)).all(1),
             'non-finite coordinate'),
            (((w > 0) & (w < 1)) | ((h > 0) & (h < 1)),
             'width or height < 1 px'),
            ((w <= 0) | (h <= 0), 'width or height <= 0'),
            ((x2 <= 0) | (y2 <= 0) | (x1 >= w_img) | (y1 >= h_img),
             'box outside the image'),
        ]
    keep = np.ones(len(x1), dtype=bool)
    for mask, reason in reasons:
        hit = mask & keep & usable
        for i in np.flatnonzero(hit):
            skipped.append(SkippedRecord(path, _ann_record(anns, i), reason))
        keep &= ~hit
    clipped = keep & usable & ((x1 < 0) | (y1 < 0) | (x2 > w_img) |
                               (y2 > h_img))
    for i in np.flatnonzero(clipped):
        skipped.append(SkippedRecord(path, _ann_record(anns, i),
                                     'clipped to the image', kept=True))
    return keep
