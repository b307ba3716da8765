"""Read detector predictions: mmdet's ``--out`` pickle or a COCO results json
(Ultralytics' ``predictions.json`` is one: ``image_id`` the file stem,
``file_name``, ``category_id`` the class index + 1, or + 0 in 8.0 releases).

Both become one :class:`Detections` table aligned with a ground-truth
:class:`~mmext.data.BoxTable` (same image ids, same 0-based labels). Records
that cannot be evaluated (unknown image or class, NaN or out-of-range score,
degenerate box) are skipped and counted, never silently used.
"""
import os
import pickle
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from mmext.data import BoxTable, SkippedRecord
from mmext.data.coco_categories import load_coco_category_labels
from mmext.data.yolo import (parse_yolo_source, read_data_yaml,
                         yolo_category_labels)
from mmext.utils import MMExtError, load_json

_COLUMNS = ('image_id', 'label', 'score', 'x1', 'y1', 'x2', 'y2')


@dataclass
class Detections:
    """Scored boxes, one row per detection, in absolute pixel xyxy.

    Attributes:
        image_id, label (0-based, as the ground truth's BoxTable), score
        (0-1), x1, y1, x2, y2 (pixels): numpy arrays of equal length.
        source: File the detections came from.
        skipped: Records that were not used, with the reason for each.
        notes: One-line remarks for the user (a likely category id
            mismatch), printed by the tools.
    """
    image_id: np.ndarray
    label: np.ndarray
    score: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray
    source: str = ''
    skipped: List[SkippedRecord] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def select(self, mask: np.ndarray) -> 'Detections':
        """Detections where ``mask`` is True (skipped records kept)."""
        cols = {k: getattr(self, k)[mask] for k in _COLUMNS}
        return Detections(source=self.source, skipped=self.skipped,
                          notes=self.notes, **cols)

    def skip_counts(self) -> Dict[str, int]:
        """Number of skipped records per reason."""
        return dict(Counter(s.reason for s in self.skipped))


def _empty_rows() -> Dict[str, list]:
    return {k: [] for k in _COLUMNS + ('file_name',)}


#: Share of detections on images the ground truth does not know above
#: which a predictions file is taken for another dataset's (an error).
FOREIGN_SHARE = 0.5
#: image_id of a row whose file name the ground truth does not know although
#: its id matches one (an id shared by chance with another dataset).
OTHER_FILE = -2


def _image_ids(rows: Dict[str, list], gt: BoxTable) -> np.ndarray:
    """Each row's ground-truth image_id (-1: unknown; :data:`OTHER_FILE`:
    the id is known but the row's file is not).

    A row's ``file_name`` decides where the ground truth knows it (an
    Ultralytics ``image_id`` is the file stem, which may collide with the
    ground truth's own integer ids); else its id as the ground truth
    writes it; else the id read as a file stem.
    """
    by_id, by_file = gt.image_id_lookup(), gt.file_name_lookup()
    out = np.full(len(rows['image_id']), -1, dtype=np.int64)
    for i, (key, name) in enumerate(zip(rows['image_id'], rows['file_name'])):
        if isinstance(name, str) and os.path.basename(name) in by_file:
            out[i] = by_file[os.path.basename(name)]
            continue
        if isinstance(name, str) and name and by_file:
            out[i] = OTHER_FILE  # a file this ground truth does not have
            continue
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            continue  # a list, float or None where an id belongs
        if key in by_id:
            out[i] = by_id[key]
        elif key in by_file:
            out[i] = by_file[key]
    return out


def _to_numpy(value) -> np.ndarray:
    """A torch tensor or array-like as a numpy array."""
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _rows_from_mmdet_pickle(path: str, rows: Dict[str, list]) -> None:
    """Fill ``rows`` from mmdet's DumpDetResults pickle (labels 0-based)."""
    try:
        with open(path, 'rb') as f:
            results = pickle.load(f)
    except FileNotFoundError:
        raise MMExtError(f'{path}: no such file') from None
    except Exception as exc:  # pickle raises many types on a bad file
        raise MMExtError(f'{path}: not a readable pickle ({exc})') from None
    if not isinstance(results, list):
        raise MMExtError(f'{path}: expected a list of per-image results '
                         "(mmdet tools/test.py --out), got "
                         f'{type(results).__name__}')
    _rows_from_results(results, rows, path)


def _rows_from_results(results: list, rows: Dict[str, list],
                       path: str) -> None:
    """Fill ``rows`` from mmdet's per-image results (``img_id``,
    ``pred_instances``); ``path`` names their source in errors."""
    first_at: Dict[object, int] = {}
    repeated = []
    for n, res in enumerate(results):
        if not isinstance(res, dict) or 'pred_instances' not in res \
                or 'img_id' not in res:
            raise MMExtError(f"{path}: result {n} has no 'img_id' and "
                             "'pred_instances' (not mmdet's --out format)")
        pred = res['pred_instances']
        try:
            boxes = _to_numpy(pred['bboxes'])
            if boxes.size and (boxes.ndim != 2 or boxes.shape[1] != 4):
                raise ValueError(f'bboxes of shape {tuple(boxes.shape)}')
            boxes = boxes.reshape(-1, 4).astype(np.float64)
            scores = _to_numpy(pred['scores']).reshape(-1).astype(np.float64)
            labels = _to_numpy(pred['labels']).reshape(-1).astype(np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise MMExtError(f'{path}: result {n} (img_id {res["img_id"]}): '
                             'pred_instances needs bboxes (N, 4), scores and '
                             f'labels ({type(exc).__name__}: {exc})') from None
        if not len(boxes) == len(scores) == len(labels):
            raise MMExtError(f'{path}: result {n}: {len(boxes)} bboxes, '
                             f'{len(scores)} scores, {len(labels)} labels')
        key = res['img_id']
        try:
            if key in first_at:
                repeated.append((key, first_at[key], n))
            else:
                first_at[key] = n
        except TypeError:  # an unhashable id: the row check names it
            pass
        rows['image_id'].extend([res['img_id']] * len(scores))
        rows['file_name'].extend([res.get('img_path')] * len(scores))
        rows['label'].extend(labels.tolist())
        rows['score'].extend(scores.tolist())
        for k, name in enumerate(('x1', 'y1', 'x2', 'y2')):
            rows[name].extend(boxes[:, k].tolist())
    if repeated:
        key, first, again = repeated[0]
        raise MMExtError(
            f'{path}: {len(repeated)} result(s) repeat an image (img_id '
            f'{key!r} at results {first} and {again}): each image must have '
            'one result, or its detections are counted twice (two '
            'prediction files concatenated?)')


def _float(value) -> float:
    """A number as float; anything else (None, text) as NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def _rows_from_coco_results(path: str, rows: Dict[str, list],
                            cat_to_label: Dict[int, int]) -> list:
    """Fill ``rows`` from a COCO results json (``bbox`` is xywh).

    Returns:
        Every record's ``category_id`` as written.
    """
    data = load_json(path)
    if not isinstance(data, list):
        raise MMExtError(f'{path}: expected a COCO results list '
                         '[{image_id, category_id, bbox, score}, ...]')
    cats = []
    for n, det in enumerate(data):
        bbox = det.get('bbox') if isinstance(det, dict) else None
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise MMExtError(f'{path}: result {n} has no bbox [x, y, w, h]')
        # non-numbers become NaN and are skipped as such by _validate
        x, y, w, h = (_float(v) for v in bbox)
        rows['image_id'].append(det.get('image_id'))
        # Ultralytics' predictions.json names the image file as well
        rows['file_name'].append(det.get('file_name'))
        # -1 marks a category the ground truth does not know.
        cat = det.get('category_id')
        cats.append(cat)
        rows['label'].append(
            cat_to_label.get(cat, -1) if isinstance(cat, int) else -1)
        rows['score'].append(_float(det.get('score')))
        rows['x1'].append(x)
        rows['y1'].append(y)
        rows['x2'].append(x + w)
        rows['y2'].append(y + h)
    return cats


def _yolo_base_note(path: str, cats: list, base: int, num_names: int) -> list:
    """A note when the ids look written with the other category base: id 0
    under base 1, or id ``num_names`` under base 0, fits no class."""
    ids = Counter(c for c in cats
                  if isinstance(c, int) and not isinstance(c, bool))
    odd = 0 if base == 1 else num_names
    if not ids.get(odd):
        return []
    looks, other = (('0-based (ultralytics 8.0)', 0) if base == 1 else
                    ('1-based (ultralytics 8.4)', 1))
    return [f'{path}: {ids[odd]} detections have category_id {odd}, no '
            f'class with --yolo-category-base {base} (skipped as unknown '
            f'category): the file looks {looks}; try --yolo-category-base '
            f'{other}']


def _validate(rows: Dict[str, list], gt: BoxTable,
              source: str) -> Detections:
    """Drop rows that cannot be evaluated against ``gt`` and count them."""
    image_id = _image_ids(rows, gt)
    n = len(rows['score'])
    keep = np.ones(n, dtype=bool)
    skipped: List[SkippedRecord] = []
    num_classes = len(gt.class_names)
    for i in range(n):
        x1, y1, x2, y2 = (rows[k][i] for k in ('x1', 'y1', 'x2', 'y2'))
        score, label = rows['score'][i], rows['label'][i]
        if image_id[i] == OTHER_FILE:
            reason = 'image file not in the ground truth'
        elif image_id[i] < 0:
            reason = 'unknown image id'
        elif not 0 <= label < num_classes:
            reason = 'unknown category'
        elif not np.isfinite(score):
            reason = 'NaN or infinite score'
        elif not 0.0 <= score <= 1.0:
            reason = 'score outside [0, 1]'
        elif not np.all(np.isfinite([x1, y1, x2, y2])):
            reason = 'non-finite box coordinate'
        elif x2 - x1 <= 0 or y2 - y1 <= 0:
            reason = 'degenerate box (width or height <= 0)'
        else:
            continue
        keep[i] = False
        skipped.append(SkippedRecord(source, f'detection {i}', reason))
    _refuse_foreign(image_id, source, gt)
    rows = dict(rows, image_id=image_id.tolist())
    cols = {}
    for k in _COLUMNS:
        dtype = np.int64 if k in ('image_id', 'label') else np.float64
        vals = [v for v, ok in zip(rows[k], keep) if ok]
        cols[k] = np.asarray(vals, dtype=dtype).reshape(-1)
    if not any(rows['file_name']):
        _refuse_unrelated(cols, gt, source)
    return Detections(source=source, skipped=skipped, **cols)


def _refuse_unrelated(cols: Dict[str, np.ndarray], gt: BoxTable,
                      source: str) -> None:
    """Ids that overlap by chance: the boxes fit these images no better than
    shuffled ones (:mod:`mmext.evaluation.prediction_agreement`)."""
    from .prediction_agreement import fits_no_better_than_chance
    det_boxes = np.stack([cols[k] for k in ('x1', 'y1', 'x2', 'y2')], 1)
    gt_boxes = np.stack([gt.x1, gt.y1, gt.x2, gt.y2], 1).astype(np.float64)
    unrelated, own, shuffled = fits_no_better_than_chance(
        cols['image_id'], cols['score'], det_boxes,
        np.asarray(gt.image_id), gt_boxes)
    if unrelated:
        raise MMExtError(
            f'{source}: its detections fit the boxes of '
            f'{gt.source or "the ground truth"} no better than those of other '
            f'images (best-box IoU {own:.2f}, {shuffled:.2f} with the images '
            'shuffled): predictions of another dataset whose image ids '
            'overlap by chance?')


def detections_from_results(results: list, gt: BoxTable,
                            source: str = '<memory>') -> Detections:
    """Detections from mmdet's per-image results held in memory.

    Args:
        results: Dicts with ``img_id`` (and optionally ``img_path``) and
            ``pred_instances`` (``bboxes``, ``scores``, ``labels``: tensors
            or arrays), as ``tools/test.py --out`` pickles them.
        gt: Ground truth the image ids and labels refer to.
        source: Named in messages and skip records.

    Raises:
        MMExtError: a result without those keys.
    """
    rows = _empty_rows()
    _rows_from_results(results, rows, source)
    return _validate(rows, gt, source)


def _refuse_foreign(image_id: np.ndarray, source: str, gt: BoxTable) -> None:
    """Predictions mostly on images the ground truth does not have belong
    to another dataset: one error naming both files, never a table of
    zeros or of chance matches."""
    foreign = int(np.sum((image_id < 0)))
    if len(image_id) and foreign > FOREIGN_SHARE * len(image_id):
        raise MMExtError(
            f'{source}: {foreign} of {len(image_id)} detections are on '
            f'images that {gt.source or "the ground truth"} does not have '
            '(by image id and file name): predictions of another dataset?')


def load_detections(path: str,
                    gt: BoxTable,
                    gt_json: Optional[str] = None,
                    yolo_category_base: int = 1) -> Detections:
    """Read predictions and align them with the ground truth.

    Args:
        path: mmdet ``tools/test.py --out`` pickle (``.pkl``/``.pickle``: a
            list of dicts with ``img_id`` and ``pred_instances`` holding
            ``bboxes`` (xyxy pixels), ``scores``, ``labels`` (0-based, the
            config's class order)) or a COCO results ``.json``.
        gt: Ground truth; its image ids and class order are the reference.
        gt_json: For a COCO results json, the ground-truth COCO json whose
            ``category_id`` the results use, or the YOLO ``data.yaml``
            whose ``names`` they index (default: ``gt.source``).
        yolo_category_base: With a YOLO ground truth, the ``category_id``
            of class index 0: 1 (ultralytics 8.4, default) or 0 (8.0). Ids
            that fit neither class are counted as 'unknown category' and a
            likely mismatch is named in ``Detections.notes``.

    Returns:
        The usable detections; the rest is in ``skipped`` with reasons.

    Raises:
        MMExtError: the file is missing or not in either format.
    """
    if not os.path.isfile(path):
        raise MMExtError(f'{path}: no such predictions file')
    rows = _empty_rows()
    if path.endswith(('.pkl', '.pickle')):
        _rows_from_mmdet_pickle(path, rows)
    elif path.endswith('.json'):
        ref = gt_json or gt.source
        yolo = parse_yolo_source(ref) if ref else None
        notes = []
        if yolo is not None:
            cat_to_label = yolo_category_labels(yolo[0], gt.class_names,
                                                yolo_category_base)
            cats = _rows_from_coco_results(path, rows, cat_to_label)
            notes = _yolo_base_note(path, cats, yolo_category_base,
                                    len(read_data_yaml(yolo[0]).names))
        elif ref and ref.endswith('.json'):
            # the ground truth's reader already mapped them: no second parse
            same = gt.category_labels is not None and os.path.abspath(
                ref) == os.path.abspath(gt.source)
            cat_to_label = (gt.category_labels if same else
                            load_coco_category_labels(ref, gt.class_names))
            _rows_from_coco_results(path, rows, cat_to_label)
        else:
            raise MMExtError(f'{path}: a COCO results json needs the ground '
                             'truth COCO json or YOLO data.yaml for its '
                             'category ids')
        dets = _validate(rows, gt, path)
        dets.notes.extend(notes)
        return dets
    else:
        raise MMExtError(f'{path}: expected mmdet --out .pkl or a COCO '
                         'results .json')
    return _validate(rows, gt, path)
