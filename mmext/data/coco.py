"""Read a COCO detection json into a :class:`BoxTable`, validating it once.

Structure is checked before any number is used: an ``images`` or
``categories`` entry of the wrong type, a duplicate image id, a duplicate
category id or name is an error naming the file, the record and the field
(these change every downstream number, so they are never skipped quietly).
Annotations that cannot be used are skipped and counted, each with its
reason.

Speed: a file whose annotations are all objects is decoded by msgspec into
compact records of the fields read (``segmentation`` and other fields are
skipped unparsed, no dict per box); any other file (NaN tokens, an
annotation that is a list) is read by the general path. Both give the same
table (tests). The columns are checked with
numpy; the per-record Python path runs only for the records numpy flags
(see ``benchmarks/coco_reader.py`` for a 1,000,000-box file).
"""
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

try:
    import msgspec
except ImportError:  # the general path reads every file, only slower
    msgspec = None

from ..utils import MMExtError, load_json
from ..utils.gc_pause import gc_paused
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


#: The image fields load_coco reads and the value a missing one has.
_IMAGE_FIELDS = dict(id=None, width=None, height=None, file_name='')


def _image_fields(imgs, path: str) -> Dict[str, list]:
    """The general path's image columns (non-objects become ``{}``, which
    :func:`_images` then names)."""
    _require(isinstance(imgs, list), path,
             "no 'images' list (not a COCO detection file)")
    first_bad = next((n for n, im in enumerate(imgs) if type(im) is not dict),
                     None)
    imgs = [im if type(im) is dict else {} for im in imgs]
    fields = {k: [im.get(k, d) for im in imgs]
              for k, d in _IMAGE_FIELDS.items()}
    fields['not_object'] = first_bad
    return fields


def _first_duplicate(keys: list) -> Optional[int]:
    """Index of the first key that appeared before, or None."""
    if len(set(keys)) == len(keys):
        return None
    seen = set()
    for n, key in enumerate(keys):
        if key in seen:
            return n
        seen.add(key)
    return None


def _size(value) -> float:
    """A width or height as a float; NaN unless a positive finite number
    (bools and strings are not sizes)."""
    if type(value) not in (int, float):
        return float('nan')
    try:
        value = float(value)
    except OverflowError:
        return float('nan')
    return value if np.isfinite(value) and value > 0 else float('nan')


def _sizes(values: list) -> np.ndarray:
    """:func:`_size` of each value, as float64 (one numpy pass when every
    value is an int or a float, as in any file a tool wrote)."""
    if set(map(type, values)) <= {int, float}:
        try:
            sizes = np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond float64
            pass
        else:
            with np.errstate(invalid='ignore'):
                sizes[~(np.isfinite(sizes) & (sizes > 0))] = np.nan
            return sizes
    return np.array([_size(v) for v in values], dtype=np.float64)


def _images(fields: Dict[str, list], path: str,
            skipped: List[SkippedRecord]):
    """Image keys, sizes and file names; images without a usable size are
    skipped (their boxes then too).

    The first image in file order that is not an object, has an id that is
    not an int or a string, or repeats an id is an error naming it.
    """
    ids = fields['id']
    bad_id = next((n for n, k in enumerate(ids) if not _is_id(k)), None)
    not_object = fields.get('not_object')
    candidates = [n for n in (not_object, bad_id) if n is not None]
    # a duplicate is only looked for before the first malformed image
    dup = _first_duplicate(ids[:min(candidates)] if candidates else ids)
    first = min(candidates + ([dup] if dup is not None else []),
                default=None)
    if first is not None:
        _require(first != not_object, path,
                 f'images[{first}] is not an object')
        key = ids[first]
        _require(first != bad_id, path, f"images[{first}]: 'id' must be an "
                 f'integer or a string, got {key!r}')
        _require(False, path, f'images[{first}]: image id {key!r} also in '
                 f'images[{ids.index(key)}]')
    widths, heights = _sizes(fields['width']), _sizes(fields['height'])
    sized = np.isfinite(widths) & np.isfinite(heights)
    unsized = set()
    for n in np.flatnonzero(~sized):
        skipped.append(SkippedRecord(path, f'image id {ids[n]}',
                                     'image without a size'))
        unsized.add(ids[n])
    keep = np.flatnonzero(sized)
    names = fields['file_name']
    keys = [ids[n] for n in keep] if len(keep) < len(ids) else ids
    names = [names[n] if isinstance(names[n], str) else str(names[n])
             for n in keep]
    return keys, widths[keep], heights[keep], names, unsized


def _lookup(values: list, table: dict, missing) -> np.ndarray:
    """``table[v]`` for each value (``missing`` for unknown or unhashable)."""
    try:
        return np.array(list(map(table.get, values, repeat(missing))),
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


@dataclass
class _Annotations:
    """The annotation fields load_coco uses, one entry per record.

    ``ids`` are the records' own ``id`` values (None where there is none);
    ``not_object`` marks records that are not JSON objects.
    """
    image_id: list
    category_id: list
    xywh: np.ndarray
    is_box: np.ndarray
    crowd: np.ndarray
    not_object: np.ndarray
    ids: list

    def record(self, i: int) -> str:
        """How a skip message names record ``i``."""
        aid = self.ids[i]
        return f'annotation id {aid}' if _is_id(aid) else f'annotations[{i}]'


#: The annotation fields load_coco reads and the value a missing one has.
_FIELDS = dict(image_id=None, category_id=None, bbox=None, iscrowd=0,
               ignore=0, id=None)


def _annotation_columns(fields: Dict[str, list], not_object: np.ndarray
                        ) -> _Annotations:
    """The columns of :data:`_FIELDS` (one list each) checked by numpy."""
    xywh, is_box = _bbox_array(fields['bbox'])
    return _Annotations(
        image_id=fields['image_id'], category_id=fields['category_id'],
        xywh=xywh, is_box=is_box & ~not_object,
        crowd=_flag(fields['iscrowd']) | _flag(fields['ignore']),
        not_object=not_object, ids=fields['id'])


def _annotations_from_dicts(anns: list) -> _Annotations:
    """The general path: any parsed JSON list, every oddity kept visible."""
    not_object = np.array([type(a) is not dict for a in anns], dtype=bool)
    anns = [a if type(a) is dict else {} for a in anns]
    return _annotation_columns(
        {k: [a.get(k, d) for a in anns] for k, d in _FIELDS.items()},
        not_object)


if msgspec is not None:

    class _AnnotationRecord(msgspec.Struct, gc=False):
        """The annotation fields load_coco reads (:data:`_FIELDS`; a
        missing one has the general path's default). Values are left
        untyped so that a bad value is a counted skip, not a slow file;
        ``gc=False``: records hold no references back, so no cycles."""
        image_id: Any = None
        category_id: Any = None
        bbox: Any = None
        iscrowd: Any = 0
        ignore: Any = 0
        id: Any = None

    class _ImageRecord(msgspec.Struct, gc=False):
        """The image fields load_coco reads (:data:`_IMAGE_FIELDS`)."""
        id: Any = None
        width: Any = None
        height: Any = None
        file_name: Any = ''

    class _CocoRecords(msgspec.Struct):
        """The file's top level; unknown keys (info, licenses) and unknown
        fields (segmentation, area) are skipped unparsed."""
        images: List[_ImageRecord]
        categories: msgspec.Raw
        annotations: Optional[List[_AnnotationRecord]] = None

    _RECORDS_DECODER = msgspec.json.Decoder(_CocoRecords)


def _read_records(path: str) -> Optional[tuple]:
    """Decode a COCO file whose images and annotations are all objects into
    compact records (a 1,000,000-box file never becomes a million dicts,
    which costs seconds and most of a gigabyte).

    Returns:
        ``(categories, image fields, annotations)`` as :func:`_read_general`,
        or None for any file this cannot decode: the general path reads it
        and names its problems.
    """
    if msgspec is None:
        return None
    try:
        with open(path, 'rb') as f:
            doc = _RECORDS_DECODER.decode(f.read())
        cats = msgspec.json.decode(doc.categories)
    except (OSError, msgspec.MsgspecError, ValueError, TypeError,
            RecursionError):
        return None
    anns, imgs = doc.annotations or [], doc.images
    del doc
    cats = coco_categories(dict(categories=cats), path)
    image_fields = {k: list(map(attrgetter(k), imgs)) for k in _IMAGE_FIELDS}
    return cats, image_fields, _annotation_columns(
        {k: list(map(attrgetter(k), anns)) for k in _FIELDS},
        np.zeros(len(anns), dtype=bool))


def _read_general(path: str) -> tuple:
    """Parse any JSON; check categories, images, then annotations (the
    first problem in that order is the error)."""
    data = load_json(path)
    _require(isinstance(data, dict), path, 'not a COCO json object')
    cats = coco_categories(data, path)
    image_fields = _image_fields(data.get('images'), path)
    anns = data.get('annotations', [])
    _require(anns is None or isinstance(anns, list), path,
             "'annotations' is not a list")
    return cats, image_fields, _annotations_from_dicts(anns or [])


def load_coco(path: str,
              class_names: Optional[Sequence[str]] = None,
              fast: bool = True) -> BoxTable:
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
        fast: Decode into compact records first (msgspec; the table is
            the same either way: False forces the general path, which the
            tests compare it with).

    Raises:
        MMExtError: the file is missing, not JSON, not COCO, or malformed
            in a way that would change every number (see module docstring).
    """
    # a million records: the collector would walk them again and again
    with gc_paused():
        return _load_coco(path, class_names, fast)


def _load_coco(path: str, class_names: Optional[Sequence[str]],
               fast: bool) -> BoxTable:
    records = _read_records(path) if fast else None
    cats, image_fields, anns = (records if records is not None else
                                _read_general(path))
    if class_names is None:
        class_names = [name for _, name in cats]
    _require(len(set(class_names)) == len(class_names), path,
             f'class names repeat: {list(class_names)}')
    name_to_label = {n: i for i, n in enumerate(class_names)}
    cat_to_label = {cid: name_to_label.get(name, -2) for cid, name in cats}
    skipped: List[SkippedRecord] = []
    keys, widths, heights, names, unsized = _images(image_fields, path,
                                                    skipped)
    int_keys = all(isinstance(k, int) for k in keys)
    image_ids = (np.array(keys, dtype=np.int64) if int_keys else
                 np.arange(len(keys), dtype=np.int64))
    index = _lookup(anns.image_id, {k: i for i, k in enumerate(keys)}, -1)
    label = _lookup(anns.category_id, cat_to_label, -1)
    xywh = anns.xywh
    keep = _annotation_mask(anns, path, index, label, unsized, skipped)
    img = np.where(index >= 0, index, 0)
    x1, y1 = xywh[:, 0], xywh[:, 1]
    x2, y2 = x1 + xywh[:, 2], y1 + xywh[:, 3]
    n = len(index)
    w_img = widths[img] if len(widths) else np.zeros(n)
    h_img = heights[img] if len(heights) else np.zeros(n)
    keep &= _box_mask(anns, path, keep, x1, y1, x2, y2, w_img, h_img,
                      skipped)
    cx1, cy1 = np.maximum(x1, 0), np.maximum(y1, 0)
    cx2, cy2 = np.minimum(x2, w_img), np.minimum(y2, h_img)
    table = table_from_columns(
        class_names=class_names, image_id=image_ids[img[keep]],
        label=label[keep], boxes=np.stack([cx1, cy1, cx2, cy2], 1)[keep],
        img_w=w_img[keep], img_h=h_img[keep], ignore=anns.crowd[keep],
        image_ids=image_ids, file_names=names, widths=widths,
        heights=heights, source=path, skipped=skipped,
        image_keys=None if int_keys else keys)
    table.category_labels = {c: k for c, k in cat_to_label.items() if k >= 0}
    return table


def _annotation_mask(anns: _Annotations, path: str, index: np.ndarray,
                     label: np.ndarray, unsized: set,
                     skipped: List[SkippedRecord]) -> np.ndarray:
    """Annotations with a known, sized image, a known class and 4 numbers."""
    keep = (index >= 0) & (label >= 0) & anns.is_box
    for i in np.flatnonzero(~keep):
        if anns.not_object[i]:
            reason = 'annotation is not an object'
        elif index[i] < 0:
            iid = anns.image_id[i]
            hashable = _is_id(iid)
            reason = ('image without a size' if hashable and iid in unsized
                      else 'unknown image id')
        elif label[i] == -1:
            reason = 'unknown category id'
        elif label[i] == -2:
            reason = 'category not in the classes'
        else:
            reason = 'bbox is not [x, y, w, h] numbers'
        skipped.append(SkippedRecord(path, anns.record(i), reason))
    label[label < 0] = 0
    return keep


def _box_mask(anns: _Annotations, path: str, usable: np.ndarray, x1, y1, x2, y2,
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
            skipped.append(SkippedRecord(path, anns.record(i), reason))
        keep &= ~hit
    clipped = keep & usable & ((x1 < 0) | (y1 < 0) | (x2 > w_img) |
                               (y2 > h_img))
    for i in np.flatnonzero(clipped):
        skipped.append(SkippedRecord(path, anns.record(i),
                                     'clipped to the image', kept=True))
    return keep
