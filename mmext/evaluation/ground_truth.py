"""Ground truth for evaluation tools: a COCO json, a YOLO data.yaml or a
config's val set."""
import os
from typing import Optional

from mmext.data import BoxTable, load_boxes, load_boxes_from_config
from mmext.utils import MMExtError
from mmext.utils.config import (dataset_img_dir, iter_leaf_datasets,
                                load_config, metainfo_classes, set_data_root)


def load_ground_truth(ann: Optional[str] = None,
                      config: Optional[str] = None,
                      data_root: Optional[str] = None,
                      split: str = 'val') -> BoxTable:
    """Read the boxes predictions are evaluated against.

    Args:
        ann: A COCO json, VOC folder or YOLO ``data.yaml`` (its ``split``
            unless written ``data.yaml:SPLIT``). With ``config`` too, the
            config only gives the class order.
        config: An mmdet config; without ``ann`` its ``<split>_dataloader``
            dataset is read.
        data_root: Replaces the config's data root (``--data-root``).
        split: ``'val'`` or ``'test'``: the config's dataloader, or the
            YOLO split.

    Raises:
        MMExtError: neither source is given, or the config has no such set.
    """
    if ann is None and config is None:
        raise MMExtError('give the ground truth: a COCO json, a YOLO '
                         'data.yaml or --config')
    cfg = load_config(config) if config else None
    if cfg is not None and data_root:
        set_data_root(cfg, data_root)
    if ann is not None:
        classes = None
        if cfg is not None:
            loader = cfg.get(f'{split}_dataloader') or {}
            classes = metainfo_classes(loader.get('dataset') or {})
        return load_boxes(ann, class_names=classes, split=split)
    loader = cfg.get(f'{split}_dataloader')
    if not loader or 'dataset' not in loader:
        raise MMExtError(f'{config}: no {split}_dataloader.dataset')
    return load_boxes_from_config(cfg, dataset_cfg=loader['dataset'])


def add_prediction_args(parser) -> None:
    """The inputs every prediction tool takes: PREDICTIONS, --gt, --config,
    --data-root, --yolo-category-base.

    Args:
        parser: An ``argparse.ArgumentParser``.
    """
    parser.add_argument(
        'predictions',
        help='mmdet tools/test.py --out .pkl or COCO results .json '
        "(Ultralytics' predictions.json is one)")
    parser.add_argument('--gt', help='ground truth: COCO json, or YOLO '
                        'data.yaml (its val split; data.yaml:test for another)')
    parser.add_argument('--config', help='mmdet config: its val set is the '
                        'ground truth (without --gt) and gives the class order')
    parser.add_argument('--data-root', help="replaces the config's data root")
    parser.add_argument(
        '--yolo-category-base', type=int, choices=(0, 1), default=1,
        help="with a YOLO --gt: predictions.json's category_id of class 0: "
        '1 = ultralytics 8.4 (default), 0 = 8.0 releases')


def add_backend_arg(parser) -> None:
    """``--backend``: which library runs the COCO evaluation.

    Args:
        parser: An ``argparse.ArgumentParser``.
    """
    from mmext.evaluation.coco_match import BACKENDS
    parser.add_argument(
        '--backend', choices=BACKENDS, default='auto',
        help='COCO evaluation library (same numbers): auto = '
        'faster-coco-eval when installed, else pycocotools')


def load_gt_and_detections(predictions: str, gt: Optional[str] = None,
                           config: Optional[str] = None,
                           data_root: Optional[str] = None,
                           yolo_category_base: int = 1):
    """Ground truth and the detections aligned to it (the inputs of
    :func:`add_prediction_args`, e.g. ``**vars(args)`` minus the rest).

    Args:
        predictions: mmdet pickle or COCO results json.
        gt: Ground-truth COCO json or YOLO data.yaml.
        config: mmdet config (ground truth without ``gt``; class order).
        data_root: Replaces the config's data root.
        yolo_category_base: ``category_id`` of class 0 in a results json
            against a YOLO ground truth.

    Returns:
        ``(BoxTable, Detections)``.
    """
    from mmext.evaluation.predictions import load_detections
    table = load_ground_truth(gt, config, data_root)
    if predictions.endswith(('.pkl', '.pickle')) and not config:
        # mmdet's labels index the config's metainfo classes, not the json
        print('note: without --config, pickle labels are read in the class '
              f'order of {gt}: {", ".join(table.class_names)}')
    dets = load_detections(predictions, table, gt_json=gt,
                           yolo_category_base=yolo_category_base)
    for note in dets.notes:
        print(f'note: {note}')
    return table, dets


def prediction_inputs(args) -> dict:
    """The :func:`add_prediction_args` values of parsed ``args``, as keyword
    arguments of :func:`load_gt_and_detections`."""
    return dict(predictions=args.predictions, gt=args.gt, config=args.config,
                data_root=args.data_root,
                yolo_category_base=args.yolo_category_base)


def gt_image_dir(gt: BoxTable, img_dir: Optional[str] = None,
                 config: Optional[str] = None, data_root: Optional[str] = None,
                 split: str = 'val') -> str:
    """The folder ``gt.file_names`` are relative to, for drawing them.

    Args:
        gt: The ground truth.
        img_dir: Given by the user (``--img-dir``): used as is.
        config: An mmdet config: its ``<split>`` dataset's image folder.
        data_root: Replaces the config's data root.
        split: ``'val'`` or ``'test'``.

    Raises:
        MMExtError: no folder can be found and the file names are relative.
    """
    if img_dir:
        return img_dir
    if config:
        cfg = load_config(config)
        if data_root:
            set_data_root(cfg, data_root)
        dataset = (cfg.get(f'{split}_dataloader') or {}).get('dataset') or {}
        leaf = next(iter_leaf_datasets(dataset), {})
        return dataset_img_dir(leaf)
    if gt.file_names and all(os.path.isabs(f) for f in gt.file_names):
        return ''
    raise MMExtError(f'{gt.source}: its file names are relative: give '
                     '--img-dir (the folder they are in) or --config')
