"""Annotation checks: do the images and boxes of a config's datasets agree?

Reads every dataset of a config through :mod:`mmext.data` (so the boxes are
the ones mmdet will train on), decodes every image with mmcv as mmdet's
``LoadImageFromFile`` does, and turns the readers' skipped records plus the
decoding into :class:`CheckResult` rows: missing or unreadable images, sizes
that differ from the annotation, boxes outside the image or degenerate,
duplicate boxes, labels outside the classes, empty images, VOC quirks and the
class distribution of each split.
"""
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import mmcv
import numpy as np
from mmdet.evaluation.functional import bbox_overlaps
from mmengine.config import Config

from mmext.data import BoxTable, load_boxes, load_boxes_from_config
from mmext.data.yolo import load_yolo, parse_yolo_source, read_data_yaml
from mmext.utils import MMExtError
from mmext.utils.config import (dataset_ann_path, dataset_img_dir, is_labeled,
                            iter_leaf_datasets)
from mmext.checks.check_result import CheckResult, info_check, make_check

#: Reader skip reasons -> (check name, severity). Unknown reasons fail.
#: Checks whose problems are whole files (their total counts files, not boxes).
FILE_LEVEL_CHECKS = ('VOC filename without extension (repaired)',
                     'malformed annotation file', 'image without a size')
SKIP_REASON_CHECKS = {
    'box outside the image': ('box outside the image', 'fail'),
    'clipped to the image': ('box sticks out of the image (clipped)', 'warn'),
    'width or height <= 0': ('degenerate box (dropped)', 'warn'),
    'width or height < 1 px': ('degenerate box (dropped)', 'warn'),
    'non-finite coordinate': ('malformed box', 'fail'),
    'bbox is not [x, y, w, h]': ('malformed box', 'fail'),
    'non-numeric bbox': ('malformed box', 'fail'),
    'missing or non-numeric bndbox': ('malformed box', 'fail'),
    'unknown category id': ('label outside the classes', 'fail'),
    'category not in the classes': ('label outside the classes', 'fail'),
    'unknown image id': ('annotation of an unknown image', 'fail'),
    'image without a size': ('image without a size', 'fail'),
    'filename without extension': ('VOC filename without extension (repaired)', 'warn'),
    'malformed XML': ('malformed annotation file', 'fail'),
    # YOLO label files (mmext.data.yolo)
    'wrong number of values': ('malformed box', 'fail'),
    'non-numeric value': ('malformed box', 'fail'),
    'normalised coordinate outside [0, 1]': ('malformed box', 'fail'),
    'class index not an integer': ('label outside the classes', 'fail'),
    'class index not in names': ('label outside the classes', 'fail'),
    'duplicate label line': ('duplicate label line (dropped, as Ultralytics does)',
                             'warn'),
    'segment read as its box': ('segment label read as its box', 'info'),
    'duplicate file stem': ('two images of one file stem (image_id ambiguous)',
                            'warn'),
    'image missing': ('image missing (skipped by the reader)', 'fail'),
    'unreadable image': ('image unreadable (skipped by the reader)', 'fail'),
    'unreadable label file': ('malformed annotation file', 'fail'),
}


@dataclass
class DatasetSource:
    """One annotation source of a config.

    Args:
        scope: Name in the report (``'train:train_labeled.json'``).
        dataset_cfg: The dataset's config dict.
        labeled: Whether its pipeline trains on the boxes.
    """
    scope: str
    dataset_cfg: dict
    labeled: bool


def config_sources(cfg: Config) -> List[DatasetSource]:
    """Every real dataset of a config's train/val/test loaders, once each.

    Datasets reading the same annotations and images (a Soft Teacher labeled
    and unlabeled split of one folder, val == test) are checked once; a
    dataset counts as labeled when any of its users loads boxes.
    """
    sources: Dict[Tuple[str, str], DatasetSource] = {}
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        for ds in iter_leaf_datasets(loader['dataset']):
            key = (dataset_ann_path(ds), dataset_img_dir(ds))
            labeled = is_labeled(ds) or split != 'train'
            if key in sources:
                sources[key].labeled |= labeled
                continue
            name = os.path.basename(key[0].rstrip('/')) or key[1]
            sources[key] = DatasetSource(f'{split}:{name}', ds, labeled)
    return list(sources.values())


def decode_image(path: str) -> Tuple[Optional[Tuple[int, int]], str, bool]:
    """Decode one image as mmdet's LoadImageFromFile does (mmcv, cv2, BGR).

    Returns:
        ``((height, width) or None, problem, grey)``: problem is ``''``,
        ``'missing'`` or ``'unreadable'``; grey is True when the three decoded
        channels are equal (a greyscale file read as colour).
    """
    if not os.path.isfile(path):
        return None, 'missing', False
    try:
        with open(path, 'rb') as f:
            img = mmcv.imfrombytes(f.read(), flag='color')
    except Exception:  # cv2/PIL raise many types on a corrupt file
        img = None
    if img is None or img.size == 0:
        return None, 'unreadable', False
    grey = bool(np.array_equal(img[..., 0], img[..., 1])
                and np.array_equal(img[..., 1], img[..., 2]))
    return img.shape[:2], '', grey


def _image_checks(table: BoxTable, img_dir: str, scope: str,
                  num_threads: int) -> List[CheckResult]:
    paths = [os.path.join(img_dir, f) for f in table.file_names]
    with ThreadPoolExecutor(max(1, num_threads)) as pool:
        decoded = list(pool.map(decode_image, paths))
    missing, unreadable, mismatch = [], [], []
    grey = 0
    for path, w, h, (shape, problem, is_grey) in zip(
            paths, table.widths, table.heights, decoded):
        grey += is_grey
        if problem == 'missing':
            missing.append(f'{path}: no such file')
        elif problem == 'unreadable':
            unreadable.append(f'{path}: cannot be decoded')
        elif shape != (int(h), int(w)):
            mismatch.append(f'{path}: annotation {int(w)}x{int(h)}, image '
                            f'{shape[1]}x{shape[0]} (w x h)')
    n = len(paths)
    return [
        make_check('image missing', scope, missing, n),
        make_check('image unreadable', scope, unreadable, n),
        make_check('annotation size != image size', scope, mismatch, n),
        info_check('greyscale image decoded as 3 channels', scope, grey, n,
                   f'{grey} of {n} images have three equal channels'),
    ]


def _skip_checks(table: BoxTable, scope: str) -> List[CheckResult]:
    grouped: Dict[Tuple[str, str], List[str]] = defaultdict(list)
    for rec in table.skipped:
        name, severity = SKIP_REASON_CHECKS.get(
            rec.reason.split(' (')[0], ('unreadable record', 'fail'))
        grouped[(name, severity)].append(f'{rec.source}: {rec.record}: {rec.reason}')
    # a per-file problem counts files; the others count box records
    unread_files = sum(r.reason.startswith('malformed XML')
                       for r in table.skipped)
    totals = {'files': table.num_images + unread_files,
              'boxes': len(table) + len(table.skipped)}

    def check(name: str, severity: str, problems: List[str]) -> CheckResult:
        unit = 'files' if name in FILE_LEVEL_CHECKS else 'boxes'
        total = totals[unit]
        return make_check(name, scope, problems, total, severity=severity,
                          detail=f'{len(problems)} of {total} {unit}'
                          if problems else '')
    results = [check(name, severity, problems)
               for (name, severity), problems in sorted(grouped.items())]
    for name, severity in sorted(set(SKIP_REASON_CHECKS.values())):
        if (name, severity) not in grouped:
            results.append(check(name, severity, []))
    return results


def duplicate_box_pairs(table: BoxTable, iou_thr: float = 0.9) -> List[Tuple[int, int, float]]:
    """Pairs of boxes of one image and one class that overlap almost fully.

    Args:
        table: Boxes.
        iou_thr: IoU at or above which two boxes count as duplicates.

    Returns:
        ``(row_a, row_b, iou)`` for each pair, rows index ``table``.
    """
    order = np.lexsort((table.label, table.image_id))
    boxes = table.bboxes()[order]
    keys = table.image_id[order] * (len(table.class_names) + 1) + table.label[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    pairs = []
    for s, e in zip(starts, ends):
        if e - s < 2:
            continue
        iou = bbox_overlaps(boxes[s:e], boxes[s:e])
        for i, j in zip(*np.nonzero(np.triu(iou >= iou_thr, k=1))):
            pairs.append((int(order[s + i]), int(order[s + j]), float(iou[i, j])))
    return pairs


def _box_checks(table: BoxTable, scope: str, labeled: bool,
                dup_iou_thr: float) -> List[CheckResult]:
    names = dict(zip(table.image_ids.tolist(), table.file_names))
    dups = [
        f'{names.get(int(table.image_id[a]), table.image_id[a])}: boxes '
        f'{table.bboxes()[a].round(1).tolist()} and '
        f'{table.bboxes()[b].round(1).tolist()} ({table.class_names[table.label[a]]}, '
        f'IoU {iou:.2f})' for a, b, iou in duplicate_box_pairs(table, dup_iou_thr)
    ]
    results = [
        make_check(f'duplicate boxes (same class, IoU >= {dup_iou_thr:g})', scope,
                   dups, len(table), severity='warn'),
    ]
    ignored = int(table.ignore.sum())
    results.append(info_check(
        'difficult/crowd boxes (ignored in training)', scope, ignored,
        len(table), f'{ignored} of {len(table)} boxes carry ignore_flag'))
    if labeled:
        with_box = set(table.image_id[~table.ignore].tolist())
        empty = [f for i, f in zip(table.image_ids.tolist(), table.file_names)
                 if i not in with_box]
        results.append(make_check(
            'image without trainable boxes', scope, empty, table.num_images, severity='warn',
            detail=('no box, or only difficult/crowd ones; filter_empty_gt=True '
                    'drops these from training'
                    if scope.startswith('train') else '')))
    return results


def _class_distribution(table: BoxTable, scope: str, labeled: bool) -> CheckResult:
    counts = table.class_counts()
    detail = ', '.join(f'{n} {c}' for n, c in counts.items())
    absent = [f'class {n}: no box' for n, c in counts.items() if c == 0]
    return make_check('class distribution', scope, absent if labeled else [],
                      len(table), severity='warn', detail=detail)


def check_table(table: BoxTable, img_dir: str, scope: str, labeled: bool = True,
                dup_iou_thr: float = 0.9, num_threads: int = 4) -> List[CheckResult]:
    """Every annotation check on one :class:`BoxTable` and its image folder.

    Args:
        table: Boxes of one dataset, with the reader's skipped records.
        img_dir: Folder the table's file names are relative to.
        scope: Name of the dataset in the report.
        labeled: Whether the dataset trains on its boxes (empty images and
            absent classes only matter then).
        dup_iou_thr: IoU at or above which two boxes of one class and image
            are duplicates.
        num_threads: Threads decoding images (decoding releases the GIL).
    """
    results = _image_checks(table, img_dir, scope, num_threads)
    results += _skip_checks(table, scope)
    results += _box_checks(table, scope, labeled, dup_iou_thr)
    results.append(_class_distribution(table, scope, labeled))
    return results


def check_annotations(cfg: Config, dup_iou_thr: float = 0.9,
                      num_threads: int = 4) -> Tuple[List[CheckResult], Dict[str, Dict[str, int]]]:
    """Annotation checks on every dataset of a config.

    Args:
        cfg: A loaded mmdet config (``--data-root`` already applied).
        dup_iou_thr: See :func:`check_table`.
        num_threads: See :func:`check_table`.

    Returns:
        ``(results, class_counts)``: the check rows and, per scope, the number
        of boxes per class (ignored boxes excluded).
    """
    results: List[CheckResult] = []
    distribution: Dict[str, Dict[str, int]] = {}
    sources = list(config_sources(cfg))
    if not sources:
        # nothing checked must not read as PASS
        raise MMExtError(f'{cfg.filename or "config"}: no dataset in '
                         'train_dataloader, val_dataloader or test_dataloader '
                         '(nothing to check)')
    for src in sources:
        table = load_boxes_from_config(cfg, dataset_cfg=src.dataset_cfg)
        img_dir = dataset_img_dir(src.dataset_cfg)
        results += check_table(table, img_dir, src.scope, src.labeled,
                               dup_iou_thr, num_threads)
        if src.labeled:
            distribution[src.scope] = table.class_counts()
    return results, distribution



def check_annotation_source(source: str, img_dir: Optional[str] = None,
                            dup_iou_thr: float = 0.9, num_threads: int = 4
                            ) -> Tuple[List[CheckResult], Dict[str, Dict[str, int]]]:
    """Annotation checks on a file instead of a config's datasets.

    Args:
        source: A YOLO ``data.yaml`` (every split it names) or
            ``data.yaml:SPLIT``; a COCO json or a VOC folder with
            ``img_dir``.
        img_dir: Image folder of a COCO json or VOC folder (a YOLO yaml
            gives its own).
        dup_iou_thr: See :func:`check_table`.
        num_threads: See :func:`check_table`.

    Returns:
        ``(results, class_counts)`` as :func:`check_annotations`.

    Raises:
        MMExtError: the source cannot be read, or a COCO/VOC source has no
            ``img_dir``.
    """
    yolo = parse_yolo_source(source)
    if yolo is not None:
        path, split = yolo
        data = read_data_yaml(path)
        tables = [(f'{s}:{os.path.basename(path)}', load_yolo(path, s),
                   data.root) for s in ([split] if split else data.splits)]
    else:
        if not img_dir:
            raise MMExtError(f'{source}: --img-dir is needed to check the '
                             'images of a COCO json or VOC folder')
        tables = [(os.path.basename(str(source).rstrip('/')),
                   load_boxes(source, img_dir=img_dir), img_dir)]
    results: List[CheckResult] = []
    distribution: Dict[str, Dict[str, int]] = {}
    for scope, table, root in tables:
        results += check_table(table, root, scope, True, dup_iou_thr,
                               num_threads)
        distribution[scope] = table.class_counts()
    return results, distribution
