"""The anchors and the RPN assigner of a two-stage detector, as plain numbers.

:class:`AnchorSpec` holds what decides which anchors mmdet places on an image
and which of them become positives: the ``AnchorGenerator`` arguments of the
RPN head, the thresholds of ``train_cfg.rpn.assigner`` (``MaxIoUAssigner``),
``train_cfg.rpn.allowed_border`` and the data preprocessor's
``pad_size_divisor``. The base anchors themselves always come from mmdet's own
``AnchorGenerator``, so every rounding mmdet does is reproduced.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..utils import MMExtError
from ..utils.config import detector_cfg


@dataclass(frozen=True)
class AnchorSpec:
    """Anchor generator, assigner thresholds and padding of an RPN.

    Args:
        strides: Stride of each level in pixels, ``(stride_w, stride_h)``.
        ratios: Anchor aspect ratios h/w (mmdet's convention).
        scales: Anchor scales (anchor side = base size x scale); ``None``
            uses ``octave_base_scale`` and ``scales_per_octave``.
        base_sizes: Base size of each level in pixels; ``None`` = min stride.
        octave_base_scale: mmdet's alternative to ``scales``.
        scales_per_octave: mmdet's alternative to ``scales``.
        center_offset: Anchor centre offset in units of the base size.
        scale_major: mmdet's base-anchor order flag.
        pos_iou_thr: IoU at or above which an anchor is positive.
        min_pos_iou: Lowest IoU of a low-quality match.
        match_low_quality: Whether each GT also gets its best anchor(s).
        gt_max_assign_all: Low-quality match takes every anchor tied at the
            max (mmdet's default) or only the first.
        allowed_border: Anchors further than this many pixels outside the
            image are invalid; negative = all anchors valid.
        pad_size_divisor: Images are padded up to a multiple of this (px).
    """
    strides: Tuple[Tuple[float, float], ...] = ((4, 4), (8, 8), (16, 16),
                                                (32, 32), (64, 64))
    ratios: Tuple[float, ...] = (0.5, 1.0, 2.0)
    scales: Optional[Tuple[float, ...]] = (8.0, )
    base_sizes: Optional[Tuple[float, ...]] = None
    octave_base_scale: Optional[float] = None
    scales_per_octave: Optional[int] = None
    center_offset: float = 0.0
    scale_major: bool = True
    pos_iou_thr: float = 0.7
    min_pos_iou: float = 0.3
    match_low_quality: bool = True
    gt_max_assign_all: bool = True
    allowed_border: float = -1.0
    pad_size_divisor: int = 32

    def generator_cfg(self) -> dict:
        """The ``anchor_generator`` dict for mmdet (type AnchorGenerator)."""
        cfg = dict(type='AnchorGenerator',
                   strides=[list(s) for s in self.strides],
                   ratios=list(self.ratios))
        if self.scales is not None:
            cfg['scales'] = list(self.scales)
        else:
            cfg['octave_base_scale'] = self.octave_base_scale
            cfg['scales_per_octave'] = self.scales_per_octave
        if self.base_sizes is not None:
            cfg['base_sizes'] = list(self.base_sizes)
        cfg['center_offset'] = self.center_offset
        cfg['scale_major'] = self.scale_major
        return cfg

    def build_generator(self):
        """mmdet's ``AnchorGenerator`` for these anchors."""
        # not through mmdet.models' __init__ (every detector, seaborn: 2-3 s
        # of a tool that only reads annotations)
        from mmext.compat import import_anchor_generator
        AnchorGenerator = import_anchor_generator()
        cfg = self.generator_cfg()
        cfg.pop('type')
        return AnchorGenerator(**cfg)

    def base_anchors(self) -> List[np.ndarray]:
        """Base anchors per level, (A, 4) xyxy float64 pixels, mmdet's order.

        The values are mmdet's float32 base anchors, widened to float64 the
        way ``grid_priors(dtype=torch.float64)`` widens them.
        """
        return [b.double().numpy() for b in self.build_generator().base_anchors]

    def num_base_anchors(self) -> int:
        """Anchors per grid position (per level)."""
        n_scales = (len(self.scales) if self.scales is not None else
                    int(self.scales_per_octave or 1))
        return len(self.ratios) * n_scales

    def replace(self, **changes) -> 'AnchorSpec':
        """A copy with some fields changed (tuples are normalised)."""
        for key in ('ratios', 'scales', 'base_sizes'):
            if changes.get(key) is not None:
                changes[key] = tuple(float(v) for v in changes[key])
        return dataclasses.replace(self, **changes)


def _pairs(strides: Sequence) -> Tuple[Tuple[float, float], ...]:
    out = []
    for s in strides:
        if isinstance(s, (list, tuple)):
            out.append((float(s[0]), float(s[1])))
        else:
            out.append((float(s), float(s)))
    return tuple(out)


def _find_pad_divisor(model_cfg: dict) -> int:
    for cfg in (detector_cfg(model_cfg), model_cfg):
        pre = cfg.get('data_preprocessor') or {}
        inner = pre.get('data_preprocessor') or pre
        if inner.get('pad_size_divisor'):
            return int(inner['pad_size_divisor'])
    return 1



def _finite_numbers(values) -> Tuple[List[float], List[str]]:
    """(finite numbers, messages for the entries that are not)."""
    good, bad = [], []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) \
                or not math.isfinite(v):
            bad.append(f'entry {v!r} is not a number')
        else:
            good.append(float(v))
    return good, bad


def anchor_generator_errors(gen: dict) -> List[Tuple[str, str]]:
    """What makes an ``AnchorGenerator`` dict generate no or invalid anchors.

    The one rule behind both ``tools/check_config.py`` (error findings) and
    ``tools/anchor_fit.py`` (a one-line error instead of all-zero coverage).

    Args:
        gen: The ``anchor_generator`` dict of a config.

    Returns:
        ``(field, message)`` per problem: ratios, scales or strides that are
        not lists of finite numbers, an empty ratio list, values <= 0.
    """
    errors: List[Tuple[str, str]] = []
    for field in ('ratios', 'scales', 'strides'):
        values = gen.get(field)
        if values is None:
            continue
        if not isinstance(values, (list, tuple)):
            errors.append((field, f'{field} must be a list, got {values!r}'))
            continue
        if field == 'strides':  # (w, h) pairs: the first of each
            values = [v[0] if isinstance(v, (list, tuple)) and v else v
                      for v in values]
        numbers, bad = _finite_numbers(values)
        errors += [(field, f'{field} {msg}') for msg in bad]
        if field == 'ratios' and not values:
            errors.append((field, 'no ratios: the RPN head gets 0 anchors'))
        singular = field[:-1]
        for v in numbers:
            if v <= 0:
                errors.append((field, f'{singular} {v:g} <= 0' + (
                    ' (h/w must be positive)' if field == 'ratios' else '')))
    return errors


def anchor_spec_from_config(cfg, source: str = 'config') -> AnchorSpec:
    """Read the RPN anchors and assigner of an mmdet config.

    Handles Soft Teacher's nesting (``model.detector.rpn_head`` and
    ``model.detector.train_cfg.rpn``).

    Args:
        cfg: A loaded mmengine Config.
        source: Name of the config file, for error messages.

    Raises:
        MMExtError: the config has no RPN head with an AnchorGenerator.
    """
    det = detector_cfg(cfg.get('model') or {})
    head = det.get('rpn_head')
    if not head or 'anchor_generator' not in head:
        raise MMExtError(f'{source}: no model(.detector).rpn_head.anchor_generator'
                         ' (anchor_fit needs a two-stage detector with an RPN)')
    gen = dict(head['anchor_generator'])
    if gen.get('type', 'AnchorGenerator') != 'AnchorGenerator':
        raise MMExtError(f"{source}: rpn_head.anchor_generator type "
                         f"{gen.get('type')!r} is not supported (AnchorGenerator only)")
    if gen.get('centers') is not None:
        raise MMExtError(f'{source}: anchor_generator.centers is not supported')
    problems = anchor_generator_errors(gen)
    if problems:
        raise MMExtError(f'{source}: rpn_head.anchor_generator.{problems[0][0]}: '
                         f'{problems[0][1]}' + (f' (and {len(problems) - 1} more)'
                                                if len(problems) > 1 else ''))
    rpn_train = (det.get('train_cfg') or {}).get('rpn') or {}
    assigner = rpn_train.get('assigner') or {}
    if assigner and assigner.get('type', 'MaxIoUAssigner') != 'MaxIoUAssigner':
        raise MMExtError(f"{source}: train_cfg.rpn.assigner type "
                         f"{assigner.get('type')!r} is not supported (MaxIoUAssigner only)")
    scales = gen.get('scales')
    return AnchorSpec(
        strides=_pairs(gen['strides']),
        ratios=tuple(float(r) for r in gen.get('ratios', (0.5, 1.0, 2.0))),
        scales=tuple(float(s) for s in scales) if scales is not None else None,
        base_sizes=(tuple(float(b) for b in gen['base_sizes'])
                    if gen.get('base_sizes') is not None else None),
        octave_base_scale=gen.get('octave_base_scale'),
        scales_per_octave=gen.get('scales_per_octave'),
        center_offset=float(gen.get('center_offset', 0.0)),
        scale_major=bool(gen.get('scale_major', True)),
        pos_iou_thr=float(assigner.get('pos_iou_thr', 0.7)),
        min_pos_iou=float(assigner.get('min_pos_iou', 0.3)),
        match_low_quality=bool(assigner.get('match_low_quality', True)),
        gt_max_assign_all=bool(assigner.get('gt_max_assign_all', True)),
        allowed_border=float(rpn_train.get('allowed_border', -1)),
        pad_size_divisor=_find_pad_divisor(cfg.get('model') or {}))
