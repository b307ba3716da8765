"""Readers: COCO json, VOC folder, mmdet config -> one :class:`BoxTable`."""
from .box_table import BoxTable, SkippedRecord, build_box_table, check_box
from .coco import load_coco
from .reader import load_boxes, load_boxes_from_config
from .voc import load_voc
from .voc_folder_dataset import VOCFolderDataset

__all__ = [
    'BoxTable', 'SkippedRecord', 'build_box_table', 'check_box', 'load_coco',
    'load_voc', 'load_boxes', 'load_boxes_from_config', 'VOCFolderDataset'
]
