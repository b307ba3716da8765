"""Readers: COCO json, VOC folder, YOLO data.yaml, mmdet config -> one
:class:`BoxTable`."""
from .box_table import (BoxTable, SkippedRecord, build_box_table, check_box,
                        describe_skipped)
from .coco import load_coco
from .reader import (class_counts, load_any_boxes, load_boxes,
                     load_boxes_from_config)
from .voc import load_voc
from .yolo import load_yolo, read_data_yaml

__all__ = [
    'BoxTable', 'SkippedRecord', 'build_box_table', 'check_box',
    'describe_skipped', 'load_coco',
    'load_voc', 'load_yolo', 'read_data_yaml', 'load_boxes',
    'load_boxes_from_config', 'load_any_boxes', 'class_counts',
    'VOCFolderDataset'
]


def __getattr__(name: str):
    # The dataset class imports mmdet.datasets (seconds); readers do not.
    if name == 'VOCFolderDataset':
        from .voc_folder_dataset import VOCFolderDataset
        return VOCFolderDataset
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
