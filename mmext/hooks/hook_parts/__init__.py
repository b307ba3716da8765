"""The pieces :class:`~mmext.hooks.SafeHook` is made of, each usable alone.

- :class:`IsolatedFailures` (``failure_isolation``): an exception in a
  lifecycle method logs one warning and switches the hook off.
- :class:`RankAgreement` (``rank_agreement``): under several processes a
  failure switches a collective hook off on every rank together.
- :class:`CheckpointState` (``checkpoint_state``): the hook's state in the
  checkpoint, restored on resume only.
- :class:`JsonlResume` (``jsonl_resume``): JSON-lines outputs cut back to
  the resumed iteration.
- :class:`MethodPatching` (``method_patching``): instance-level method
  wrappers, given back after training and when the hook is switched off.

Every piece derives from :class:`IsolatedFailures`, which owns the two
training-boundary steps the others extend (``_on_train_start`` after the
subclass's ``before_train``, ``_on_train_end`` after its ``after_train``).
"""
from .checkpoint_state import META_KEY, CheckpointState, is_resuming
from .failure_isolation import LIFECYCLE_METHODS, IsolatedFailures
from .jsonl_resume import JsonlResume, truncate_jsonl
from .method_patching import MethodPatching
from .rank_agreement import AgreedFailure, RankAgreement

__all__ = ['AgreedFailure', 'CheckpointState', 'IsolatedFailures',
           'JsonlResume', 'LIFECYCLE_METHODS', 'META_KEY', 'MethodPatching',
           'RankAgreement', 'is_resuming', 'truncate_jsonl']
