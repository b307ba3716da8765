"""An mmdet dataset that reads a plain VOC folder (one XML per image).

mmdet's ``VOCDataset`` needs the VOC devkit layout (``ImageSets/Main/*.txt``,
``VOC2007/...``); real defect data such as NEU-DET is just a folder of XMLs and
a folder of images, with XMLs whose ``<filename>`` lacks the extension. This
dataset reads such a folder through :func:`mmext.data.load_voc` (the same
reader every mmext tool uses), so training and the tools see the same boxes.
"""
import os
from typing import List, Optional, Sequence

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from .voc import load_voc


@DATASETS.register_module()
class VOCFolderDataset(BaseDetDataset):
    """Detection dataset over a folder of VOC XMLs and a folder of images.

    ``<difficult>1`` boxes get ``ignore_flag=1`` (as mmdet's XMLDataset).
    Images can be split deterministically into ``num_parts`` interleaved parts
    (image ``i`` of the sorted XMLs is in part ``i % num_parts``), which gives
    a labeled/unlabeled split of one folder without writing files.

    Args:
        ann_file: Folder of ``*.xml`` (joined to ``data_root``).
        data_prefix: ``dict(img='IMAGES/')``, the image folder.
        num_parts: Number of interleaved parts. Defaults to 1 (all images).
        parts: Parts to keep, each in ``[0, num_parts)``. Defaults to all.
        **kwargs: Everything else of :class:`mmdet.datasets.BaseDetDataset`
            (``metainfo=dict(classes=...)``, ``pipeline``, ``filter_cfg``...).
    """

    def __init__(self,
                 *args,
                 num_parts: int = 1,
                 parts: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        if num_parts < 1:
            raise ValueError(f'num_parts must be >= 1, got {num_parts}')
        self.num_parts = num_parts
        self.parts = set(range(num_parts) if parts is None else parts)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the XML folder into mmdet data infos."""
        classes = self._metainfo.get('classes')
        img_dir = self.data_prefix.get('img', '')
        table = load_voc(self.ann_file, img_dir=img_dir, class_names=classes)
        if not classes:
            self._metainfo['classes'] = table.class_names
        bboxes = table.bboxes()
        order = {int(i): k for k, i in enumerate(table.image_ids)}
        instances: List[List[dict]] = [[] for _ in table.image_ids]
        for row in range(len(table)):
            instances[order[int(table.image_id[row])]].append(
                dict(bbox=bboxes[row].tolist(),
                     bbox_label=int(table.label[row]),
                     ignore_flag=int(table.ignore[row])))
        data_list = []
        for k, img_id in enumerate(table.image_ids):
            if k % self.num_parts not in self.parts:
                continue
            data_list.append(
                dict(img_id=int(img_id),
                     img_path=os.path.join(img_dir, table.file_names[k]),
                     width=int(table.widths[k]),
                     height=int(table.heights[k]),
                     instances=instances[k]))
        return data_list

    def filter_data(self) -> List[dict]:
        """Drop images without trainable boxes or below ``min_size``.

        Same ``filter_cfg`` keys as mmdet's CocoDataset (``filter_empty_gt``,
        ``min_size`` in pixels); test mode keeps every image.
        """
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept = []
        for info in self.data_list:
            has_box = any(not i['ignore_flag'] for i in info['instances'])
            if filter_empty_gt and not has_box:
                continue
            if min(info['width'], info['height']) >= min_size:
                kept.append(info)
        return kept
