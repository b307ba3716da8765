"""The boxes behind the error breakdown, drawn on the real images.

:func:`~mmext.evaluation.error_breakdown.error_breakdown` sorts every false
positive into TIDE's types and finds the missed GT boxes; this draws them.
Per class and per kind, the ``k`` most costly cases become crops of the
real image with context, each captioned with the file, class, score, IoU
and type:

- ``missed``: GT boxes no detection found or aimed at, largest first (a
  large missed box is the most surprising one);
- ``background``, ``classification`` (with the class it was taken for),
  ``duplicate``, ``localization`` (prediction and its GT overlaid, IoU
  written) and ``both``: false positives, highest score first (the ones
  that survive any threshold longest).

The ranking and the types are the breakdown's own; nothing is redefined
here. Boxes are drawn in the image's pixels: GT green, detection red.
"""
import html
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmext.data import BoxTable
from mmext.evaluation.error_breakdown import ErrorBreakdown
from mmext.evaluation.predictions import Detections

#: Kinds drawn, in the order of the gallery page.
GALLERY_KINDS = ('missed', 'background', 'classification', 'localization',
                 'duplicate', 'both')
#: Context around a box: the crop is the box grown by this factor of its
#: size on each side, at least ``MIN_CROP`` pixels wide and high.
CONTEXT = 1.0
MIN_CROP = 64
GT_COLOUR = '#1a9850'
DET_COLOUR = '#d73027'


@dataclass
class GalleryCase:
    """One drawn case.

    Attributes:
        kind: One of :data:`GALLERY_KINDS`.
        cls: The class whose AP the case costs (the GT's class for
            ``missed`` and ``classification``, else the detection's).
        image_row: Row of the image in ``gt.image_ids``.
        gt_row: GT box row (-1: none, a background error).
        det_row: Detection row (-1: a missed box).
        score: Detection score (None for a missed box).
        iou: IoU of detection and GT (None when one is missing).
        caption: One line: file, class, score, IoU, type.
    """
    kind: str
    cls: str
    image_row: int
    gt_row: int
    det_row: int
    score: Optional[float]
    iou: Optional[float]
    caption: str


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two xyxy boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
             - inter)
    return inter / union if union > 0 else 0.0


def gallery_cases(gt: BoxTable, dets: Detections, breakdown: ErrorBreakdown,
                  k: int = 8) -> Dict[str, Dict[str, List[GalleryCase]]]:
    """The ``k`` most costly cases per class and kind.

    Args:
        gt: The ground truth the breakdown was computed on.
        dets: Its detections (the same rows as ``breakdown.det_error``).
        breakdown: The result of ``error_breakdown(gt, dets)``.
        k: Cases per class and kind.

    Returns:
        ``{class: {kind: [GalleryCase, ...]}}``, kinds without a case left
        out.
    """
    row_of = {int(i): n for n, i in enumerate(gt.image_ids)}
    names = gt.class_names
    out: Dict[str, Dict[str, List[GalleryCase]]] = {n: {} for n in names}
    missed = np.flatnonzero(breakdown.gt_missed)
    area = (gt.x2 - gt.x1) * (gt.y2 - gt.y1)
    for g in missed[np.argsort(-area[missed], kind='stable')]:
        cls = names[gt.label[g]]
        cases = out[cls].setdefault('missed', [])
        if len(cases) < k:
            n = row_of[int(gt.image_id[g])]
            cases.append(GalleryCase(
                'missed', cls, n, int(g), -1, None, None,
                f'{gt.file_names[n]} | {cls} | missed | '
                f'{gt.x2[g] - gt.x1[g]:.0f}x{gt.y2[g] - gt.y1[g]:.0f} px'))
    for kind in GALLERY_KINDS[1:]:
        rows = np.flatnonzero(breakdown.det_error == kind)
        for r in rows[np.argsort(-dets.score[rows], kind='stable')]:
            g = int(breakdown.det_target[r])
            cls = names[gt.label[g] if kind == 'classification'
                        else dets.label[r]]
            cases = out[cls].setdefault(kind, [])
            if len(cases) >= k:
                continue
            n = row_of[int(dets.image_id[r])]
            det_box = (dets.x1[r], dets.y1[r], dets.x2[r], dets.y2[r])
            iou = (_iou(det_box, (gt.x1[g], gt.y1[g], gt.x2[g], gt.y2[g]))
                   if g >= 0 else None)
            taken = (f' taken for {names[dets.label[r]]}'
                     if kind == 'classification' else '')
            cases.append(GalleryCase(
                kind, cls, n, g, int(r), float(dets.score[r]), iou,
                f'{gt.file_names[n]} | {cls}{taken} | score '
                f'{dets.score[r]:.2f}' + ('' if iou is None else
                                          f' | IoU {iou:.2f}') + f' | {kind}'))
    return {c: kinds for c, kinds in out.items() if kinds}


def _crop_window(boxes: List[Sequence[float]], width: int,
                 height: int) -> tuple:
    """Pixel window around ``boxes`` with context, inside the image."""
    x1 = min(b[0] for b in boxes)
    y1 = min(b[1] for b in boxes)
    x2 = max(b[2] for b in boxes)
    y2 = max(b[3] for b in boxes)
    pad_x = max(CONTEXT * (x2 - x1), (MIN_CROP - (x2 - x1)) / 2, 0)
    pad_y = max(CONTEXT * (y2 - y1), (MIN_CROP - (y2 - y1)) / 2, 0)
    return (int(max(0, x1 - pad_x)), int(max(0, y1 - pad_y)),
            int(min(width, np.ceil(x2 + pad_x))),
            int(min(height, np.ceil(y2 + pad_y))))


#: Height of a drawn crop and of its caption band (pixels).
TILE_H = 160
CAPTION_H = 42
TILE_MAX_W = 260


def _hex_bgr(colour: str) -> tuple:
    r, g, b = (int(colour[k:k + 2], 16) for k in (1, 3, 5))
    return b, g, r


def draw_tile(image: np.ndarray, boxes: List[tuple],
              lines: List[str]) -> np.ndarray:
    """One captioned tile: the crop around ``boxes`` with context, the boxes
    and the caption lines above. BGR, ``TILE_H + CAPTION_H`` pixels high.

    Drawn with OpenCV, not matplotlib: a gallery has hundreds of crops.

    Args:
        image: The whole image (BGR or grey).
        boxes: ``((x1, y1, x2, y2), '#rrggbb')`` in the image's pixels.
        lines: Caption lines (three fit).
    """
    import cv2
    h, w = image.shape[:2]
    x0, y0, x1, y1 = _crop_window([b for b, _ in boxes], w, h)
    crop = image[y0:y1, x0:x1]
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    scale = min(TILE_H / max(crop.shape[0], 1),
                TILE_MAX_W / max(crop.shape[1], 1))
    size = (max(1, round(crop.shape[1] * scale)),
            max(1, round(crop.shape[0] * scale)))
    crop = np.ascontiguousarray(cv2.resize(
        crop, size, interpolation=cv2.INTER_NEAREST if scale > 1
        else cv2.INTER_AREA))
    for (bx1, by1, bx2, by2), colour in boxes:
        cv2.rectangle(crop, (round((bx1 - x0) * scale),
                             round((by1 - y0) * scale)),
                      (round((bx2 - x0) * scale) - 1,
                       round((by2 - y0) * scale) - 1), _hex_bgr(colour), 2)
    width = max([crop.shape[1], 150] + [cv2.getTextSize(
        line, cv2.FONT_HERSHEY_SIMPLEX, 0.36, 1)[0][0] + 6 for line in lines])
    tile = np.full((CAPTION_H + TILE_H, width, 3), 255, dtype=np.uint8)
    tile[CAPTION_H:CAPTION_H + crop.shape[0], :crop.shape[1]] = crop
    for n, line in enumerate(lines):
        cv2.putText(tile, line, (3, 12 + 13 * n), cv2.FONT_HERSHEY_SIMPLEX,
                    0.36, (20, 20, 20), 1, cv2.LINE_AA)
    return tile


def draw_case(image: np.ndarray, case: GalleryCase, gt: BoxTable,
              dets: Detections) -> np.ndarray:
    """The tile of one error case: its GT box (green) and detection (red)."""
    boxes = []
    if case.gt_row >= 0:
        g = case.gt_row
        boxes.append(((gt.x1[g], gt.y1[g], gt.x2[g], gt.y2[g]), GT_COLOUR))
    if case.det_row >= 0:
        r = case.det_row
        boxes.append(((dets.x1[r], dets.y1[r], dets.x2[r], dets.y2[r]),
                      DET_COLOUR))
    return draw_tile(image, boxes, _caption_lines(case))


def _caption_lines(case: GalleryCase) -> List[str]:
    """The caption on three short lines: file; class and type; numbers."""
    parts = case.caption.split(' | ')
    numbers = parts[2:-1] if case.det_row >= 0 else parts[3:]
    return [os.path.basename(parts[0]), f'{parts[1]} | {case.kind}',
            ' | '.join(numbers)]


def blank_tile(text: str) -> np.ndarray:
    """A grey tile with one line (an image that could not be read)."""
    import cv2
    tile = np.full((CAPTION_H + TILE_H, 150, 3), 235, dtype=np.uint8)
    cv2.putText(tile, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36,
                (20, 20, 20), 1, cv2.LINE_AA)
    return tile


def row_image(tiles: List[np.ndarray]) -> np.ndarray:
    """Tiles side by side with a white gap."""
    gap = np.full((CAPTION_H + TILE_H, 6, 3), 255, dtype=np.uint8)
    parts = []
    for tile in tiles:
        parts += [tile, gap]
    return np.hstack(parts[:-1])


def read_image(path: str) -> Optional[np.ndarray]:
    import mmcv
    try:
        image = mmcv.imread(path)  # BGR, as OpenCV draws
    except Exception:  # noqa: BLE001 - counted by the caller
        return None
    return image


def write_gallery(gt: BoxTable, dets: Detections, breakdown: ErrorBreakdown,
                  img_dir: str, out_dir: str, k: int = 8) -> dict:
    """Draw :func:`gallery_cases` into PNGs and one ``index.html``.

    Args:
        gt, dets, breakdown: As for :func:`gallery_cases`.
        img_dir: Folder the GT's ``file_name`` values are relative to.
        out_dir: Output folder (``<class>_<kind>.png`` and ``index.html``).
        k: Cases per class and kind.

    Returns:
        ``{'index': path, 'images': [png paths], 'cases': n,
        'unreadable': [image files that could not be read]}``.
    """
    import cv2

    os.makedirs(out_dir, exist_ok=True)
    cases = gallery_cases(gt, dets, breakdown, k)
    images: Dict[int, Optional[np.ndarray]] = {}
    unreadable: List[str] = []
    written, sections, total = [], [], 0
    for cls, kinds in cases.items():
        parts = [f'<h2>{html.escape(cls)}</h2>']
        for kind in GALLERY_KINDS:
            drawn = kinds.get(kind)
            if not drawn:
                continue
            tiles = []
            for case in drawn:
                if case.image_row not in images:
                    path = os.path.join(img_dir, gt.file_names[case.image_row])
                    images[case.image_row] = read_image(path)
                    if images[case.image_row] is None:
                        unreadable.append(path)
                image = images[case.image_row]
                if image is None:
                    tiles.append(blank_tile('unreadable image'))
                    continue
                tiles.append(draw_case(image, case, gt, dets))
            name = gallery_file_name(cls, kind)
            cv2.imwrite(os.path.join(out_dir, name), row_image(tiles))
            written.append(os.path.join(out_dir, name))
            total += len(drawn)
            captions = ''.join(f'<li>{html.escape(c.caption)}</li>'
                               for c in drawn)
            parts.append(f'<h3>{html.escape(kind)} ({len(drawn)})</h3>'
                         f'<img src="{name}" alt="{html.escape(cls)} '
                         f'{kind}"><ul>{captions}</ul>')
        sections.append(''.join(parts))
    index = os.path.join(out_dir, 'index.html')
    with open(index, 'w', encoding='utf-8') as f:
        f.write(_page(sections, k))
    return dict(index=index, images=written, cases=total,
                unreadable=sorted(set(unreadable)))


def gallery_file_name(cls: str, kind: str) -> str:
    """The PNG of one class and kind (``<class>_<kind>.png``)."""
    safe = ''.join(c if c.isalnum() or c in '-_' else '_' for c in cls)
    return f'{safe}_{kind}.png'


def _page(sections: List[str], k: int) -> str:
    legend = (f'Per class and kind, the {k} most costly cases of '
              'tools/error_breakdown.py: missed GT boxes largest first, false '
              'positives highest score first. GT green, detection red.')
    style = ('body{font-family:sans-serif;max-width:1400px;margin:1em auto}'
             'img{max-width:100%}ul{font-size:12px;color:#333}'
             'h3{margin-bottom:0.2em}')
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Error '
            f'gallery</title><style>{style}</style></head><body><h1>Error '
            f'gallery</h1><p>{html.escape(legend)}</p>{"".join(sections)}'
            '</body></html>')


def write_lost_images(lost: List[dict], img_dir: str, path: str,
                      low: float, high: float) -> dict:
    """The images lost between two score thresholds, drawn in one row.

    ``threshold_sweep --compare LOW HIGH``'s table as a picture: per image
    its best correct detection (red, scored in ``[low, high)``) and the GT
    box it found (green).

    Args:
        lost: Rows of :func:`~mmext.evaluation.threshold_sweep.images_lost`
            (with ``det_box``).
        img_dir: Folder of their ``file_name``; ``path``: the PNG.
        low, high: The two thresholds (for the caption).

    Returns:
        ``{'path', 'cases', 'unreadable': [files]}``.
    """
    import cv2
    tiles, unreadable = [], []
    for row in lost:
        image = read_image(os.path.join(img_dir, row['file_name']))
        if image is None:
            unreadable.append(os.path.join(img_dir, row['file_name']))
            tiles.append(blank_tile('unreadable image'))
            continue
        tiles.append(draw_tile(image, [(row['gt_box'], GT_COLOUR),
                                       (row['det_box'], DET_COLOUR)], [
            os.path.basename(row['file_name']),
            f'{row["class"]} | lost at {high:g} (kept at {low:g})',
            f'score {row["best_score"]:.2f} | {row["box_w"]:.0f}x'
            f'{row["box_h"]:.0f} px']))
    if tiles:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        cv2.imwrite(path, row_image(tiles))
    return dict(path=path, cases=len(lost), unreadable=unreadable)


__all__ = ['GALLERY_KINDS', 'GalleryCase', 'gallery_cases', 'draw_case',
           'write_gallery', 'gallery_file_name', 'write_lost_images']
