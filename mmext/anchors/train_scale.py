"""Boxes at training scale: the train pipeline's Resize, applied as mmdet does.

mmdet's ``Resize`` (and the ``RandomResize`` / ``RandomChoiceResize`` wrappers
around it) picks a target ``scale``, computes the new image size with mmcv's
``rescale_size`` (``keep_ratio=True``) or takes the scale as the size
(``keep_ratio=False``), multiplies boxes by ``new_size / old_size`` per axis
and clips them to the new image. The data preprocessor then pads the image up
to a multiple of ``pad_size_divisor``. This module reproduces exactly that,
per distinct image size, for a fixed target scale; random resizes are
reported at the ends and the middle of their range.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..data import BoxTable
from ..utils import MMExtError

RESIZE_TYPES = ('Resize', 'RandomResize', 'RandomChoiceResize')


@dataclass(frozen=True)
class ResizeRule:
    """One fixed resize of the train pipeline.

    Args:
        name: Label for tables (``'short 400'``, ``'scale (1333, 800)'``).
        scale: Target scale ``(w, h)`` as mmdet's ``Resize`` takes it, or
            ``None`` when ``scale_factor`` is used.
        scale_factor: Fixed factor (when ``scale`` is None); 1.0 = no resize.
        keep_ratio: mmdet's ``keep_ratio``.
        clip_object_border: Clip boxes to the resized image.
    """
    name: str
    scale: Optional[Tuple[int, int]] = None
    scale_factor: float = 1.0
    keep_ratio: bool = True
    clip_object_border: bool = True

    def new_size(self, width: int, height: int) -> Tuple[int, int]:
        """Resized image size ``(w, h)`` in pixels, as mmdet's Resize gets it."""
        # imported here: mmcv imports torch (seconds, ~300 MB), which a tool
        # reading a large annotation file should load after the file
        from mmcv.image.geometric import _scale_size, rescale_size
        scale = self.scale
        if scale is None:
            scale = _scale_size((width, height), self.scale_factor)
        if self.keep_ratio:
            return tuple(rescale_size((width, height), tuple(scale)))
        return int(scale[0]), int(scale[1])


@dataclass
class ScaledBoxes:
    """Boxes of a table at training scale (one resize rule).

    Attributes:
        bboxes: (N, 4) xyxy float64 pixels in the resized image.
        img_w, img_h: Resized image size per box (pixels, int).
        pad_w, pad_h: Padded size per box (pixels, int).
        image_index: Row of the box's image in ``table.image_ids`` (int).
    """
    bboxes: np.ndarray
    img_w: np.ndarray
    img_h: np.ndarray
    pad_w: np.ndarray
    pad_h: np.ndarray
    image_index: np.ndarray

    @property
    def ratio_h_over_w(self) -> np.ndarray:
        """Aspect ratio h/w of each box (mmdet's convention)."""
        b = self.bboxes
        return (b[:, 3] - b[:, 1]) / (b[:, 2] - b[:, 0])

    def take(self, idx: np.ndarray) -> 'ScaledBoxes':
        """The boxes at ``idx`` (an index or boolean array)."""
        return ScaledBoxes(self.bboxes[idx], self.img_w[idx], self.img_h[idx],
                           self.pad_w[idx], self.pad_h[idx],
                           self.image_index[idx])


def _pad_up(size: np.ndarray, divisor: int) -> np.ndarray:
    if divisor <= 1:
        return size
    return (np.ceil(size / divisor) * divisor).astype(np.int64)


def scale_boxes(table: BoxTable, rule: ResizeRule,
                pad_size_divisor: int = 1) -> ScaledBoxes:
    """Resize the table's boxes as mmdet's Resize would for each image.

    Ignored (crowd / difficult) boxes are left out, as the RPN assigner
    leaves them out.

    Args:
        table: Boxes from :mod:`mmext.data`.
        rule: The resize.
        pad_size_divisor: The data preprocessor's padding divisor (px).
    """
    keep = ~table.ignore
    sorter = np.argsort(table.image_ids)
    image_index = sorter[np.searchsorted(table.image_ids, table.image_id[keep],
                                         sorter=sorter)].astype(np.int64)
    sizes = np.stack([table.widths, table.heights], axis=1).astype(np.int64)
    uniq, inverse = np.unique(sizes, axis=0, return_inverse=True)
    new = np.array([rule.new_size(int(w), int(h)) for w, h in uniq],
                   dtype=np.int64).reshape(-1, 2)[inverse.reshape(-1)]
    factor = new / sizes  # (w_scale, h_scale) per image, as mmdet's Resize
    fw = factor[image_index, 0]
    fh = factor[image_index, 1]
    b = table.bboxes()[keep] * np.stack([fw, fh, fw, fh], axis=1)
    img_w = new[image_index, 0]
    img_h = new[image_index, 1]
    if rule.clip_object_border:
        b[:, 0::2] = np.clip(b[:, 0::2], 0, img_w[:, None])
        b[:, 1::2] = np.clip(b[:, 1::2], 0, img_h[:, None])
    return ScaledBoxes(b, img_w, img_h, _pad_up(img_w, pad_size_divisor),
                       _pad_up(img_h, pad_size_divisor), image_index)


def _as_tuple(scale) -> Tuple[int, int]:
    if isinstance(scale, (int, float)):
        return int(scale), int(scale)
    return int(scale[0]), int(scale[1])


def _name(scale: Tuple[int, int], keep_ratio: bool) -> str:
    if keep_ratio:
        return f'{max(scale)}x{min(scale)}'
    return f'{scale[0]}x{scale[1]} (w x h, no keep_ratio)'


def _random_resize_rules(t: dict) -> List[ResizeRule]:
    keep = bool(t.get('keep_ratio', False))
    clip = bool(t.get('clip_object_border', True))
    scale = t.get('scale')
    ratio_range = t.get('ratio_range')
    if ratio_range is not None:
        base = _as_tuple(scale)
        lo, hi = float(ratio_range[0]), float(ratio_range[1])
        # mmcv's _random_sample_ratio: int(scale * ratio) per edge.
        scales = [(int(base[0] * r), int(base[1] * r))
                  for r in (lo, (lo + hi) / 2, hi)]
    else:
        s0, s1 = _as_tuple(scale[0]), _as_tuple(scale[1])
        # mmcv's _random_sample: each edge uniform in its own [min, max].
        e0 = sorted((s0[0], s1[0]))
        e1 = sorted((s0[1], s1[1]))
        scales = [(e0[0], e1[0]), ((e0[0] + e0[1]) // 2, (e1[0] + e1[1]) // 2),
                  (e0[1], e1[1])]
    return _dedup([ResizeRule(_name(s, keep), s, 1.0, keep, clip)
                   for s in scales])


def _choice_resize_rules(t: dict) -> List[ResizeRule]:
    keep = bool(t.get('keep_ratio', t.get('resize_kwargs', {}).get('keep_ratio', False)))
    clip = bool(t.get('clip_object_border', True))
    scales = t.get('scales', t.get('scale'))
    if isinstance(scales, tuple) and len(scales) == 2 and all(
            isinstance(v, (int, float)) for v in scales):
        scales = [scales]
    ordered = sorted((_as_tuple(s) for s in scales), key=lambda s: (min(s), max(s)))
    picks = ordered if len(ordered) <= 3 else [
        ordered[0], ordered[len(ordered) // 2], ordered[-1]]
    return _dedup([ResizeRule(_name(s, keep), s, 1.0, keep, clip) for s in picks])


def _dedup(rules: List[ResizeRule]) -> List[ResizeRule]:
    seen, out = set(), []
    for r in rules:
        if (r.scale, r.keep_ratio) not in seen:
            seen.add((r.scale, r.keep_ratio))
            out.append(r)
    return out


def _flatten_pipeline(pipeline: Sequence) -> List[dict]:
    """Transforms in order, entering MultiBranch's ``sup`` branch."""
    out = []
    for t in pipeline or []:
        if not isinstance(t, dict):
            continue
        if t.get('type') == 'MultiBranch':
            sup = t.get('sup')
            out.extend(_flatten_pipeline(sup if isinstance(sup, list) else [sup]))
        else:
            out.append(t)
    return out


def resize_rules_from_pipeline(pipeline: Sequence,
                               source: str = 'config') -> List[ResizeRule]:
    """The resize(s) a train pipeline applies to labeled images.

    A fixed ``Resize`` gives one rule; ``RandomResize`` and
    ``RandomChoiceResize`` give the ends and the middle of their range. A
    pipeline without a resize gives the identity (scale factor 1).

    Args:
        pipeline: The dataset's ``pipeline`` list (Soft Teacher: the ``sup``
            branch of ``MultiBranch`` is used).
        source: Config file name for error messages.

    Raises:
        MMExtError: a resize this tool cannot reproduce.
    """
    for t in _flatten_pipeline(pipeline):
        kind = t.get('type')
        if kind == 'Resize':
            keep = bool(t.get('keep_ratio', False))
            clip = bool(t.get('clip_object_border', True))
            if t.get('scale') is not None:
                s = _as_tuple(t['scale'])
                return [ResizeRule(_name(s, keep), s, 1.0, keep, clip)]
            sf = t.get('scale_factor')
            if isinstance(sf, (list, tuple)):
                raise MMExtError(f'{source}: Resize with a per-axis scale_factor is not supported')
            return [ResizeRule(f'factor {sf}', None, float(sf), keep, clip)]
        if kind == 'RandomResize':
            return _random_resize_rules(t)
        if kind == 'RandomChoiceResize':
            return _choice_resize_rules(t)
        if 'Resize' in str(kind) or kind in ('RandomCrop', 'Mosaic', 'RandomAffine',
                                              'Expand', 'MixUp'):
            raise MMExtError(f'{source}: train pipeline has {kind} (before any Resize); '
                             'anchor_fit reproduces Resize/RandomResize/RandomChoiceResize '
                             'only: give --scale W H')
    return [ResizeRule('original size', None, 1.0, True, True)]


def fixed_scale_rule(scale: Optional[Sequence[int]], keep_ratio: bool = True) -> ResizeRule:
    """The rule for a ``--scale W H`` flag (None = images at original size)."""
    if scale is None:
        return ResizeRule('original size', None, 1.0, True, True)
    s = _as_tuple(scale)
    return ResizeRule(_name(s, keep_ratio), s, 1.0, keep_ratio, True)
