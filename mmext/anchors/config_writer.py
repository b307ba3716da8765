"""Write the recommended anchors as a config that ``_base_``s the input one."""
import os
import pprint
from typing import Optional, Sequence

from mmengine.config import Config

from ..utils.config import detector_cfg


def anchor_override(cfg: Config, ratios: Sequence[float],
                    scales: Optional[Sequence[float]] = None) -> dict:
    """The ``model`` override that changes only the RPN anchor generator.

    Soft Teacher nests the detector: ``model.detector.rpn_head``. The RPN
    head's number of base priors (its conv output channels) follows from
    the ratios and scales, so no other key has to change.

    Args:
        cfg: The input config.
        ratios: New ratios h/w.
        scales: New scales, or None to keep the current ones.
    """
    gen = dict(ratios=[float(r) for r in ratios])
    if scales is not None:
        gen['scales'] = [float(s) for s in scales]
    head = dict(rpn_head=dict(anchor_generator=gen))
    model = cfg.get('model') or {}
    if detector_cfg(model) is not model:
        return dict(detector=head)
    return head


def write_anchor_config(cfg_path: str, out_path: str, ratios: Sequence[float],
                        scales: Optional[Sequence[float]] = None,
                        header: str = '') -> str:
    """Write a config that inherits ``cfg_path`` and overrides the anchors.

    ``_base_`` is written relative to the new file, so the pair can move
    together (e.g. a repository checkout).

    Args:
        cfg_path: The input config file.
        out_path: Where to write the new config (``.py``).
        ratios: Recommended ratios h/w.
        scales: Recommended scales, or None to keep the current ones.
        header: Comment lines (without ``#``) put at the top.

    Returns:
        ``out_path``.
    """
    cfg = Config.fromfile(cfg_path)
    override = anchor_override(cfg, ratios, scales)
    base = os.path.relpath(os.path.abspath(cfg_path),
                           os.path.dirname(os.path.abspath(out_path)))
    lines = [f'# {line}' for line in header.splitlines()]
    lines.append(f'_base_ = [{base!r}]')
    lines.append('')
    lines.append(f'model = {pprint.pformat(override, width=88, sort_dicts=False)}')
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return out_path


def write_anchor_snippet(out_path: str, generator_cfg: dict) -> str:
    """Write an ``anchor_generator = dict(...)`` snippet (no input config)."""
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write('# Paste into model(.detector).rpn_head of your config.\n')
        f.write(f'anchor_generator = {pprint.pformat(generator_cfg, width=88, sort_dicts=False)}\n')
    return out_path
