"""A training log a person can read: mmext's per-class figures out of the
text line, into the visualizer only.

mmengine's ``LogProcessor`` writes every ``train/`` scalar of the
MessageHub into each text log line, and mmext's monitors put dozens there
(per-class pseudo-label ratios, anchor positives, loss stability): the
demo's longest line was 3,206 characters, and the user's losses were lost
in it. :class:`ConciseLogProcessor` returns the same scalars to the
visualizer (``scalars.json``, TensorBoard, W&B: nothing is lost there) and
keeps in the text line the losses, the learning rate and timing, and a few
mmext summaries (``text_keys``), then says how many figures went to the
visualizer only.
"""
import re
from typing import Sequence, Tuple

from mmengine.registry import LOG_PROCESSORS
from mmengine.runner import LogProcessor

#: Scalar families the mmext hooks log (under ``train/``).
MMEXT_PREFIXES = ('pseudo/', 'anchor/', 'stability/', 'competence/')
#: The mmext figures kept in the text line by default: one number each for
#: pseudo labels, anchors and loss noise.
DEFAULT_TEXT_KEYS = ('pseudo/kept_ratio_cls', 'pseudo/precision_cls',
                     'anchor/rpn_no_pos_share/all', 'stability/cv/loss')


@LOG_PROCESSORS.register_module()
class ConciseLogProcessor(LogProcessor):
    """``LogProcessor`` whose training text line leaves out mmext's detail.

    Use it from a config (the visualizer still gets every scalar)::

        log_processor = dict(type='ConciseLogProcessor', by_epoch=False)

    Args:
        text_keys: mmext scalars (without ``train/``) kept in the text line.
        hidden_prefixes: Scalar families left out of the text line.
        **kwargs: ``LogProcessor``'s arguments.
    """

    def __init__(self, text_keys: Sequence[str] = DEFAULT_TEXT_KEYS,
                 hidden_prefixes: Sequence[str] = MMEXT_PREFIXES,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.text_keys = tuple(text_keys)
        prefixes = '|'.join(re.escape(p) for p in hidden_prefixes)
        # one "name: value" item of mmengine's line ("  " between items)
        self._item = re.compile(rf'(?:^|(?<=  ))((?:{prefixes})\S*): \S+(?:  |\s*$)')

    def get_log_after_iter(self, runner, batch_idx: int,
                           mode: str) -> Tuple[dict, str]:
        """mmengine's tag (every scalar) and a text line without the hidden
        families, with a count of what went to the visualizer only."""
        tag, log_str = super().get_log_after_iter(runner, batch_idx, mode)
        if mode != 'train':
            return tag, log_str
        return tag, self.concise(log_str)

    def concise(self, log_str: str) -> str:
        """``log_str`` without hidden items other than :attr:`text_keys`."""
        hidden = 0

        def drop(match: re.Match) -> str:
            nonlocal hidden
            if match.group(1) in self.text_keys:
                return match.group(0)
            hidden += 1
            return ''
        text = self._item.sub(drop, log_str).rstrip()
        if hidden:
            text += f'  (+{hidden} mmext figures in the visualizer)'
        return text
