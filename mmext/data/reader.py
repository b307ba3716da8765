"""One way in for annotations: a COCO json, a VOC folder, a YOLO data.yaml or
an mmdet config."""
import os
from typing import Dict, Optional, Sequence, Union

from mmengine.config import Config

from ..utils import MMExtError
from ..utils.config import (dataset_ann_path, dataset_img_dir, load_config,
                            metainfo_classes, train_dataset_cfg)
from .box_table import BoxTable
from .coco import load_coco
from .voc import load_voc
from .yolo import load_yolo, parse_yolo_source


def load_boxes(source: str,
               img_dir: Optional[str] = None,
               class_names: Optional[Sequence[str]] = None,
               split: str = 'train') -> BoxTable:
    """Read boxes from a COCO json, a VOC folder or a YOLO data.yaml.

    Args:
        source: ``*.json`` (COCO), a folder of VOC ``*.xml``, or a YOLO
            ``data.yaml`` / ``data.yaml:SPLIT`` (``*.yaml`` / ``*.yml``).
        img_dir: For VOC, the image folder (completes file names).
        class_names: Restrict to and order by these class names.
        split: For a YOLO yaml without ``:SPLIT``, the split to read.

    Raises:
        MMExtError: the source is missing or of an unknown kind.
    """
    yolo = parse_yolo_source(source)
    if yolo is not None:
        path, named = yolo
        return load_yolo(path, split=named or split, class_names=class_names)
    if os.path.isdir(source):
        return load_voc(source, img_dir=img_dir, class_names=class_names)
    if not os.path.exists(source):
        raise MMExtError(f'{source}: no such file or folder')
    if source.endswith('.json'):
        return load_coco(source, class_names=class_names)
    raise MMExtError(f'{source}: expected a COCO .json file, a VOC folder or '
                     'a YOLO data.yaml')


def load_boxes_from_config(config: Union[str, Config],
                           dataset_cfg: Optional[dict] = None) -> BoxTable:
    """Read the labeled train boxes of an mmdet config.

    Args:
        config: Config path or loaded Config.
        dataset_cfg: A dataset dict of the config to read instead of the
            labeled train dataset.
    """
    cfg = load_config(config)
    ds = dataset_cfg if dataset_cfg is not None else train_dataset_cfg(cfg)
    ann = dataset_ann_path(ds)
    classes = metainfo_classes(ds)
    if ds.get('type') in ('VOCDataset', 'XMLDataset') or os.path.isdir(ann):
        return load_boxes(ann, img_dir=dataset_img_dir(ds), class_names=classes)
    return load_boxes(ann, class_names=classes)


def load_any_boxes(source: Union[str, Config], img_dir: Optional[str] = None,
                   class_names: Optional[Sequence[str]] = None) -> BoxTable:
    """Boxes of a COCO json, VOC folder, YOLO data.yaml (its train split
    unless ``data.yaml:SPLIT``) or config's labeled train set.

    Args:
        source: COCO ``.json``, VOC annotation folder, YOLO ``data.yaml``
            (or ``data.yaml:val``), or mmdet config (``.py`` path or
            Config).
        img_dir: VOC image folder, if ``source`` is a VOC folder.
        class_names: Restrict to and order by these classes.
    """
    if isinstance(source, Config) or str(source).endswith('.py'):
        return load_boxes_from_config(source)
    return load_boxes(source, img_dir=img_dir, class_names=class_names)


def class_counts(source: Union[str, Config], img_dir: Optional[str] = None,
                 class_names: Optional[Sequence[str]] = None,
                 include_ignored: bool = False) -> Dict[str, int]:
    """Boxes per class ``n_c`` of an annotation file, VOC folder or config.

    Crowd/difficult boxes are left out unless ``include_ignored``.

    Args:
        source: See :func:`load_any_boxes`.
        img_dir: VOC image folder, if ``source`` is a VOC folder.
        class_names: Restrict to and order by these classes.
        include_ignored: Count crowd/difficult boxes too.

    Returns:
        Class name -> number of boxes, in the class order of the source.
    """
    table = load_any_boxes(source, img_dir, class_names)
    return table.class_counts(include_ignored=include_ignored)
