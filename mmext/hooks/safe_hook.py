"""The foundation of the mmext hooks: never crash a run, resume exactly.

:class:`SafeHook` is the five pieces of :mod:`mmext.hooks.hook_parts`
together, plus two runner helpers:

- failure isolation (:class:`~.hook_parts.IsolatedFailures`): the first
  exception in a lifecycle method is logged as ONE warning naming the hook,
  the point and the error, and the hook is switched off for the rest of the
  run;
- rank agreement (:class:`~.hook_parts.RankAgreement`, ``collective =
  True``): a failure on one rank switches a collective hook off on every
  rank together;
- checkpoint state (:class:`~.hook_parts.CheckpointState`):
  ``checkpoint['meta']['mmext'][<HookName>]``, restored on resume only;
- JSON-lines resume (:class:`~.hook_parts.JsonlResume`): the hook's record
  files are cut back to the resumed iteration;
- method patching (:class:`~.hook_parts.MethodPatching`): instance-level
  wrappers, given back after training and when the hook is switched off;
- :meth:`SafeHook.model_of` (the model inside a DDP wrapper) and
  :meth:`SafeHook.dataset_classes` (from the train dataset's metainfo).

A hook that needs only some of these derives from those pieces alone.

Usage::

    @HOOKS.register_module()
    class MyMonitorHook(SafeHook):
        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            ...  # may raise; training goes on

        def state_dict(self):
            return dict(total=self.total)

        def load_state_dict(self, state, runner):
            self.total = state['total']
"""
from typing import List, Optional

import torch
from mmengine.model import is_model_wrapper

from .hook_parts import (LIFECYCLE_METHODS, META_KEY, AgreedFailure,  # noqa: F401
                         CheckpointState, JsonlResume, MethodPatching,
                         RankAgreement, is_resuming, truncate_jsonl)


class SafeHook(RankAgreement, CheckpointState, JsonlResume, MethodPatching):
    """Base class of the mmext hooks: the pieces of
    :mod:`mmext.hooks.hook_parts` together (see the module docstring).

    Subclasses override lifecycle methods as usual, with no try/except of
    their own; ``collective``, ``state_version`` and ``legacy_state_keys``
    are the pieces' class attributes.
    """

    # ------------------------------------------------------------ helpers
    @staticmethod
    def model_of(runner) -> torch.nn.Module:
        """The runner's model, unwrapped from DDP (``.module``)."""
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @staticmethod
    def dataset_classes(runner, num_classes: Optional[int] = None) -> List[str]:
        """Class names from the train dataset's metainfo.

        Args:
            runner: The runner.
            num_classes: The model's number of classes. When given, names of
                another length are not used. When None, it is read from the
                detector's box head (student of a semi-supervised model) if
                the dataset has no class names.

        Returns:
            The names, or ``class_0 ... class_{n-1}``.
        """
        try:
            meta = runner.train_dataloader.dataset.metainfo or {}
            names = list(meta.get('classes') or [])
        except Exception:  # noqa: BLE001 - any dataset without metainfo
            names = []
        if names and (num_classes is None or len(names) == num_classes):
            return names
        if num_classes is None:
            model = SafeHook.model_of(runner)
            detector = getattr(model, 'student', model)
            head = getattr(getattr(detector, 'roi_head', None), 'bbox_head',
                           None) or getattr(detector, 'bbox_head')
            num_classes = head.num_classes
        return [f'class_{i}' for i in range(num_classes)]
