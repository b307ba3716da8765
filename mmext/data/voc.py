"""Read a Pascal VOC folder (one XML per image) into a :class:`BoxTable`."""
import os
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils import MMExtError
from .box_table import BoxTable, SkippedRecord, build_box_table, check_box

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')


def _resolve_image(file_name: str, stem: str, img_dir: Optional[str],
                   img_index: Dict[str, str]) -> str:
    """Return the image file name, adding the extension the XML left out."""
    if os.path.splitext(file_name)[1].lower() in IMAGE_EXTENSIONS:
        return file_name
    key = os.path.splitext(file_name)[0] if file_name else stem
    return img_index.get(key, img_index.get(stem, file_name or stem))


def _text(node: Optional[ET.Element], tag: str) -> Optional[str]:
    found = None if node is None else node.find(tag)
    return None if found is None or found.text is None else found.text.strip()


def load_voc(ann_dir: str,
             img_dir: Optional[str] = None,
             class_names: Optional[Sequence[str]] = None) -> BoxTable:
    """Read every ``*.xml`` in ``ann_dir`` the way mmdet's XMLDataset does.

    ``<difficult>1</difficult>`` boxes are kept with ``ignore=True`` (mmdet's
    ``ignore_flag``). A ``<filename>`` without extension is completed from the
    files in ``img_dir`` (counted as a repair). XMLs that do not parse or lack
    a size are skipped and counted.

    Args:
        ann_dir: Folder of VOC XML files.
        img_dir: Folder of the images, used to complete file names.
        class_names: Class names in label order; default: every ``<name>``
            found, sorted.

    Raises:
        MMExtError: the folder is missing or holds no XML file.
    """
    if not os.path.isdir(ann_dir):
        raise MMExtError(f'{ann_dir}: no such annotation folder')
    xmls = sorted(f for f in os.listdir(ann_dir) if f.endswith('.xml'))
    if not xmls:
        raise MMExtError(f'{ann_dir}: no .xml annotation files')
    img_index = {}
    if img_dir and os.path.isdir(img_dir):
        for f in sorted(os.listdir(img_dir)):
            stem, ext = os.path.splitext(f)
            if ext.lower() in IMAGE_EXTENSIONS:
                img_index.setdefault(stem, f)
    skipped: List[SkippedRecord] = []
    parsed = []
    for image_id, xml_name in enumerate(xmls):
        path = os.path.join(ann_dir, xml_name)
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            skipped.append(SkippedRecord(path, xml_name, f'malformed XML ({exc})'))
            continue
        if root.tag != 'annotation':
            skipped.append(SkippedRecord(
                path, xml_name, f'root element <{root.tag}>, not <annotation>'))
            continue
        parsed.append((image_id, xml_name, path, root))
    if class_names is None:
        names = {_text(o, 'name') for _, _, _, r in parsed for o in r.iter('object')}
        class_names = sorted(n for n in names if n)
    name_to_label = {n: i for i, n in enumerate(class_names)}
    images, boxes = [], []
    for image_id, xml_name, path, root in parsed:
        stem = os.path.splitext(xml_name)[0]
        file_name = _text(root, 'filename') or ''
        resolved = _resolve_image(file_name, stem, img_dir, img_index)
        if resolved != file_name:
            skipped.append(SkippedRecord(path, xml_name,
                                         'filename without extension', kept=True))
        size = root.find('size')
        try:
            width = float(_text(size, 'width'))
            height = float(_text(size, 'height'))
            assert np.isfinite(width) and np.isfinite(height)
            assert width > 0 and height > 0
        except (TypeError, ValueError, AssertionError):
            skipped.append(SkippedRecord(path, xml_name, 'image without a size'))
            continue
        images.append(dict(id=image_id, file_name=resolved, width=width,
                           height=height))
        for k, obj in enumerate(root.iter('object')):
            rec = f'{xml_name} object {k}'
            name = _text(obj, 'name')
            if name not in name_to_label:
                skipped.append(SkippedRecord(path, rec, 'category not in the classes'))
                continue
            bnd = obj.find('bndbox')
            try:
                xyxy = [float(_text(bnd, t)) for t in ('xmin', 'ymin', 'xmax', 'ymax')]
            except (TypeError, ValueError, AttributeError):
                skipped.append(SkippedRecord(path, rec, 'missing or non-numeric bndbox'))
                continue
            problem, xyxy = check_box(*xyxy, width, height)
            if problem and problem != 'clipped to the image':
                skipped.append(SkippedRecord(path, rec, problem))
                continue
            if problem:
                skipped.append(SkippedRecord(path, rec, problem, kept=True))
            difficult = _text(obj, 'difficult') in ('1', 'true', 'True')
            boxes.append((image_id, name_to_label[name], *xyxy, difficult))
    return build_box_table(class_names, images, boxes, ann_dir, skipped)
