"""Deliberately broken transforms and dataset edits for the check_dataset tests."""
import json
import os
import shutil

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module(force=True)
class FlipWithoutHomography(BaseTransform):
    """Flips image and boxes horizontally but records no homography."""

    def transform(self, results):
        results['img'] = mmcv.imflip(results['img'], 'horizontal')
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].flip_(results['img'].shape[:2], 'horizontal')
        return results


@TRANSFORMS.register_module(force=True)
class ToFloatZeroOne(BaseTransform):
    """Converts the image to float32 in [0, 1] (the classic scale mix-up)."""

    def transform(self, results):
        results['img'] = results['img'].astype(np.float32) / 255.0
        return results


@TRANSFORMS.register_module(force=True)
class DropFirstBox(BaseTransform):
    """Loses the first box without being a filtering transform."""

    def transform(self, results):
        keep = np.arange(len(results['gt_bboxes'])) > 0
        results['gt_bboxes'] = results['gt_bboxes'][keep]
        results['gt_bboxes_labels'] = results['gt_bboxes_labels'][keep]
        results['gt_ignore_flags'] = results['gt_ignore_flags'][keep]
        return results


@TRANSFORMS.register_module(force=True)
class ShiftBoxesOut(BaseTransform):
    """Moves every box right by the image width (outside the image)."""

    def transform(self, results):
        results['gt_bboxes'].translate_([results['img'].shape[1], 0])
        return results


@TRANSFORMS.register_module(force=True)
class RaiseInPipeline(BaseTransform):
    """Fails on every sample (a transform bug or a corrupt input)."""

    def transform(self, results):
        raise ValueError('planted failure')


def insert_sup(cfg, transform: dict) -> None:
    """Put ``transform`` into the labeled pipeline, just before MultiBranch."""
    pipeline = cfg.train_dataloader.dataset.datasets[0].pipeline
    pipeline.insert(len(pipeline) - 1, transform)


def insert_student(cfg, transform: dict) -> None:
    """Put ``transform`` into the unsup_student branch, before packing."""
    branch = cfg.train_dataloader.dataset.datasets[1].pipeline[-1]['unsup_student']
    branch.insert(len(branch) - 1, transform)


def copy_dataset(src: str, dst: str) -> str:
    """A writable copy of a demo dataset folder."""
    shutil.copytree(src, dst)
    return dst


def edit_json(path: str, edit) -> None:
    """Apply ``edit(dict)`` to a JSON file in place."""
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, 'w') as f:
        json.dump(data, f)


def labeled_json(root: str) -> str:
    return os.path.join(root, 'annotations', 'train_labeled.json')
