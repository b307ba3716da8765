"""Read a COCO detection json into a :class:`BoxTable`."""
from typing import List, Optional, Sequence

from ..utils import MMExtError, load_json
from .box_table import BoxTable, SkippedRecord, build_box_table, check_box


def _require(cond: bool, path: str, problem: str) -> None:
    if not cond:
        raise MMExtError(f'{path}: {problem}')


def load_coco(path: str,
              class_names: Optional[Sequence[str]] = None) -> BoxTable:
    """Read boxes from a COCO json the way mmdet's CocoDataset reads them.

    Crowd boxes are kept with ``ignore=True`` (mmdet's ``ignore_flag``);
    boxes under 1 px, with non-finite coordinates, outside the image, of an
    unknown category, or in an image without a size are skipped and counted;
    boxes sticking out of the image are clipped (as mmdet's Resize does) and
    counted.

    Args:
        path: COCO json file.
        class_names: Keep only these categories, in this order (a config's
            ``metainfo.classes``); default: every category, sorted by id.

    Raises:
        MMExtError: the file is missing, not JSON or not COCO.
    """
    data = load_json(path)
    _require(isinstance(data, dict), path, 'not a COCO json object')
    _require(isinstance(data.get('images'), list), path,
             "no 'images' list (not a COCO detection file)")
    _require(isinstance(data.get('categories'), list), path,
             "no 'categories' list (not a COCO detection file)")
    cats = sorted(data['categories'], key=lambda c: c.get('id', 0))
    cat_names = {c['id']: c['name'] for c in cats}
    if class_names is None:
        class_names = [c['name'] for c in cats]
    name_to_label = {n: i for i, n in enumerate(class_names)}
    cat_to_label = {
        cid: name_to_label[n]
        for cid, n in cat_names.items() if n in name_to_label
    }
    skipped: List[SkippedRecord] = []
    images, sizes = [], {}
    for im in data['images']:
        iid = im.get('id')
        w, h = im.get('width'), im.get('height')
        if not (isinstance(w, (int, float)) and isinstance(h, (int, float))
                and w > 0 and h > 0):
            skipped.append(
                SkippedRecord(path, f'image id {iid}', 'image without a size'))
            continue
        sizes[iid] = (float(w), float(h))
        images.append(
            dict(id=iid, file_name=im.get('file_name', ''), width=w,
                 height=h))
    boxes = []
    for ann in data.get('annotations', []) or []:
        rec = f"annotation id {ann.get('id')}"
        iid = ann.get('image_id')
        bbox = ann.get('bbox')
        if iid not in sizes:
            reason = ('image without a size' if any(
                s.record == f'image id {iid}' for s in skipped) else
                      'unknown image id')
            skipped.append(SkippedRecord(path, rec, reason))
            continue
        if ann.get('category_id') not in cat_to_label:
            reason = ('unknown category id' if ann.get('category_id')
                      not in cat_names else 'category not in the classes')
            skipped.append(SkippedRecord(path, rec, reason))
            continue
        if not (isinstance(bbox, list) and len(bbox) == 4):
            skipped.append(SkippedRecord(path, rec, 'bbox is not [x, y, w, h]'))
            continue
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            skipped.append(SkippedRecord(path, rec, 'non-numeric bbox'))
            continue
        if 0 < w < 1 or 0 < h < 1:
            skipped.append(
                SkippedRecord(path, rec, 'width or height < 1 px'))
            continue
        problem, xyxy = check_box(x, y, x + w, y + h, *sizes[iid])
        if problem and problem != 'clipped to the image':
            skipped.append(SkippedRecord(path, rec, problem))
            continue
        if problem:
            skipped.append(SkippedRecord(path, rec, problem, kept=True))
        ignore = bool(ann.get('iscrowd', 0)) or bool(ann.get('ignore', 0))
        boxes.append((iid, cat_to_label[ann['category_id']], *xyxy, ignore))
    return build_box_table(class_names, images, boxes, path, skipped)
