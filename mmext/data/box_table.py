"""One table of boxes, whatever the annotation format.

Every mmext tool that reads annotations goes through :mod:`mmext.data`, which
returns a :class:`BoxTable`: one row per box (image id, class, x1, y1, x2, y2,
image width/height, ignore flag), the images (with or without boxes), the class
names, and the records that were skipped with the reason for each.
"""
from collections import Counter
from dataclasses import dataclass, field
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class SkippedRecord:
    """A record a reader could not use, or used after a repair.

    Args:
        source: File the record came from.
        record: Which record (``'annotation id 17'``, ``'crazing_1.xml box 2'``).
        reason: Short reason; equal reasons are counted together.
        kept: True when the record was kept after a repair (e.g. clipped).
    """
    source: str
    record: str
    reason: str
    kept: bool = False


@dataclass
class BoxTable:
    """Boxes of a detection dataset in absolute pixel xyxy coordinates.

    Attributes (numpy arrays of length N, one row per box):
        image_id, label (0-based index into ``class_names``), x1, y1, x2, y2
        (pixels), img_w, img_h (pixels, of the box's image), ignore (crowd or
        difficult boxes, which mmdet's assigners leave out of training).

    Image arrays (length M, every image, with or without boxes):
        image_ids, file_names, widths, heights.

    ``image_keys`` (length M or None): the ids as the file wrote them where
    they are not all integers (strings such as Ultralytics' file stems);
    ``image_ids`` then numbers the images 0..M-1 in file order.

    ``category_labels`` (COCO only): ``{category_id: label}`` for the
    categories in ``class_names``, what COCO results files refer to.
    """
    class_names: Tuple[str, ...]
    image_id: np.ndarray
    label: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray
    img_w: np.ndarray
    img_h: np.ndarray
    ignore: np.ndarray
    image_ids: np.ndarray
    file_names: List[str]
    widths: np.ndarray
    heights: np.ndarray
    source: str = ''
    skipped: List[SkippedRecord] = field(default_factory=list)
    image_keys: Optional[list] = None
    category_labels: Optional[Dict[int, int]] = None

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def image_id_lookup(self) -> Dict[object, int]:
        """``{id as the ground-truth file writes it: image_id}``."""
        keys = (self.image_keys if self.image_keys is not None else
                self.image_ids.tolist())
        return dict(zip(keys, self.image_ids.tolist()))

    def file_name_lookup(self) -> Dict[object, int]:
        """``{file name or stem: image_id}`` where unambiguous.

        An all-digit stem is also listed as an int, the way Ultralytics'
        ``predictions.json`` writes ``image_id``.
        """
        seen: Dict[object, set] = {}
        for name, iid in zip(self.file_names, self.image_ids.tolist()):
            base = os.path.basename(name)
            stem = os.path.splitext(base)[0]
            aliases = {base, stem} | ({int(stem)} if stem.isdigit() else set())
            for alias in aliases - {''}:
                seen.setdefault(alias, set()).add(iid)
        return {a: ids.pop() for a, ids in seen.items() if len(ids) == 1}

    @property
    def num_images(self) -> int:
        """Number of images, with or without boxes."""
        return int(self.image_ids.shape[0])

    @property
    def widths_px(self) -> np.ndarray:
        """Box widths in pixels."""
        return self.x2 - self.x1

    @property
    def heights_px(self) -> np.ndarray:
        """Box heights in pixels."""
        return self.y2 - self.y1

    @property
    def ratio_h_over_w(self) -> np.ndarray:
        """Box aspect ratio h/w (mmdet's anchor ``ratios`` convention)."""
        return self.heights_px / self.widths_px

    def bboxes(self) -> np.ndarray:
        """Boxes as an (N, 4) float array in xyxy pixels."""
        return np.stack([self.x1, self.y1, self.x2, self.y2], axis=1)

    def select(self, mask: np.ndarray) -> 'BoxTable':
        """Return a table with only the boxes where ``mask`` is True.

        The images and the skipped records are kept whole.
        """
        cols = {
            name: getattr(self, name)[mask]
            for name in ('image_id', 'label', 'x1', 'y1', 'x2', 'y2',
                         'img_w', 'img_h', 'ignore')
        }
        return BoxTable(
            class_names=self.class_names,
            image_ids=self.image_ids,
            file_names=self.file_names,
            widths=self.widths,
            heights=self.heights,
            source=self.source,
            skipped=self.skipped,
            image_keys=self.image_keys,
            category_labels=self.category_labels,
            **cols)

    def class_counts(self, include_ignored: bool = False) -> Dict[str, int]:
        """Number of boxes per class name, zero for empty classes."""
        labels = self.label if include_ignored else self.label[~self.ignore]
        counts = np.bincount(labels, minlength=len(self.class_names))
        return {n: int(c) for n, c in zip(self.class_names, counts)}

    def skip_counts(self) -> Dict[str, int]:
        """Number of skipped (or repaired) records per reason."""
        return dict(Counter(s.reason for s in self.skipped))

    def to_coco(self) -> dict:
        """Return the table as a COCO detection dict (category ids 1..K)."""
        images = [
            dict(id=int(i), file_name=f, width=int(w), height=int(h))
            for i, f, w, h in zip(self.image_ids, self.file_names,
                                  self.widths, self.heights)
        ]
        anns = []
        for k in range(len(self)):
            w = float(self.x2[k] - self.x1[k])
            h = float(self.y2[k] - self.y1[k])
            anns.append(
                dict(
                    id=k + 1,
                    image_id=int(self.image_id[k]),
                    category_id=int(self.label[k]) + 1,
                    bbox=[float(self.x1[k]), float(self.y1[k]), w, h],
                    area=w * h,
                    iscrowd=int(self.ignore[k])))
        cats = [
            dict(id=i + 1, name=n) for i, n in enumerate(self.class_names)
        ]
        return dict(images=images, annotations=anns, categories=cats)


def describe_skipped(skipped: Sequence[SkippedRecord],
                     what: str = 'annotation records') -> List[str]:
    """One line per reason: how many records were repaired or skipped.

    Args:
        skipped: A reader's :class:`SkippedRecord` list.
        what: What a record is, for the message.
    """
    counts = Counter((s.kept, s.reason) for s in skipped)
    return [f'{"repaired" if kept else "skipped"} {n} {what}: {reason}'
            for (kept, reason), n in sorted(counts.items())]


def build_box_table(class_names: Sequence[str], images: List[dict],
                    boxes: List[tuple], source: str,
                    skipped: List[SkippedRecord]) -> BoxTable:
    """Assemble a :class:`BoxTable` from plain rows.

    Args:
        class_names: Class names, index = label.
        images: Dicts with ``id``, ``file_name``, ``width``, ``height``.
        boxes: Tuples ``(image_id, label, x1, y1, x2, y2, ignore)``, pixels.
        source: File or folder the rows came from.
        skipped: Records the reader skipped or repaired.
    """
    size = {im['id']: (im['width'], im['height']) for im in images}
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    image_id = arr[:, 0].astype(np.int64)
    wh = np.array([size[i] for i in image_id], dtype=np.float64).reshape(-1, 2)
    return table_from_columns(
        class_names=class_names, image_id=image_id,
        label=arr[:, 1].astype(np.int64), boxes=arr[:, 2:6], img_w=wh[:, 0],
        img_h=wh[:, 1], ignore=arr[:, 6].astype(bool),
        image_ids=np.array([im['id'] for im in images], dtype=np.int64),
        file_names=[im['file_name'] for im in images],
        widths=np.array([im['width'] for im in images], dtype=np.float64),
        heights=np.array([im['height'] for im in images], dtype=np.float64),
        source=source, skipped=skipped)


def table_from_columns(class_names: Sequence[str], image_id: np.ndarray,
                       label: np.ndarray, boxes: np.ndarray,
                       img_w: np.ndarray, img_h: np.ndarray,
                       ignore: np.ndarray, image_ids: np.ndarray,
                       file_names: List[str], widths: np.ndarray,
                       heights: np.ndarray, source: str,
                       skipped: List[SkippedRecord],
                       image_keys: Optional[list] = None) -> BoxTable:
    """Assemble a :class:`BoxTable` from column arrays (boxes (N, 4) xyxy
    pixels; the other box columns length N; image columns length M)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return BoxTable(
        class_names=tuple(class_names),
        image_id=np.asarray(image_id, dtype=np.int64).reshape(-1),
        label=np.asarray(label, dtype=np.int64).reshape(-1),
        x1=boxes[:, 0].copy(), y1=boxes[:, 1].copy(),
        x2=boxes[:, 2].copy(), y2=boxes[:, 3].copy(),
        img_w=np.asarray(img_w, dtype=np.float64).reshape(-1),
        img_h=np.asarray(img_h, dtype=np.float64).reshape(-1),
        ignore=np.asarray(ignore, dtype=bool).reshape(-1),
        image_ids=np.asarray(image_ids, dtype=np.int64).reshape(-1),
        file_names=list(file_names),
        widths=np.asarray(widths, dtype=np.float64).reshape(-1),
        heights=np.asarray(heights, dtype=np.float64).reshape(-1),
        source=source, skipped=skipped, image_keys=image_keys)


def check_box(x1: float, y1: float, x2: float, y2: float, width: float,
              height: float) -> Tuple[str, Tuple[float, float, float, float]]:
    """Validate one xyxy box against its image.

    Returns:
        ``(problem, box)``: problem is ``''`` for a good box, ``'clipped to
        the image'`` for a box repaired by clipping (box is the clipped one),
        or the reason the box must be skipped.
    """
    vals = (x1, y1, x2, y2)
    if not all(np.isfinite(v) for v in vals):
        return 'non-finite coordinate', vals
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return 'width or height <= 0', vals
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        return 'box outside the image', vals
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height))
    if clipped != vals:
        return 'clipped to the image', clipped
    return '', vals
