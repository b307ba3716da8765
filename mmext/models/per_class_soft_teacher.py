"""Soft Teacher with per-class (fixed or adaptive) pseudo-label thresholds.

mmdet 3.3's SoftTeacher filters pseudo labels three times, each with one
scalar of ``semi_train_cfg``: ``pseudo_label_initial_score_thr`` in
``get_pseudo_instances``, ``rpn_pseudo_thr`` in
``rpn_loss_by_pseudo_instances`` and ``cls_pseudo_thr`` in
``rcnn_cls_loss_by_pseudo_instances`` (``filter_gt_instances``: ``scores >
thr``). :class:`PerClassPseudoThrMixin` lets each of them be a float, a list
of one float per class or a policy dict (see
:mod:`mmext.models.threshold_policies`).

How it reuses mmdet's code instead of copying it: each of the three methods
is called with its scalar threshold set to ``-inf`` for the duration of the
call, on pseudo labels the mixin has already filtered with ``scores >
thr[label]``. The initial filter happens where mmdet computes the box-jitter
uncertainty (``compute_uncertainty_with_aug``, called right after mmdet's
own initial filter), so jitter is computed only for the boxes kept, in the
same order: with equal thresholds for all classes the boxes, the random
numbers drawn and the losses are mmdet's exactly.

Override points for your own Soft Teacher subclass (e.g. a multi-view one):
put the mixin first, ``class MyST(PerClassPseudoThrMixin, MySoftTeacher)``.
Your overrides of the three methods then receive pre-filtered samples and a
``-inf`` scalar. If your ``get_pseudo_instances`` does not call
``compute_uncertainty_with_aug``, call :meth:`filter_pseudo_instances` (and
:meth:`record_teacher_scores` for the policies) yourself.

Thresholds of a policy are recomputed by
:class:`~mmext.hooks.PseudoThresholdHook` (every ``update_interval``
iterations, from the scores of all processes), which also logs them and keeps
them in the checkpoint; without the hook a policy stays at ``warmup_thr``.
"""
import contextlib
import copy
import math
from typing import Dict, List, Sequence

import torch
from mmdet.models.detectors import SoftTeacher
from mmdet.models.utils import filter_gt_instances
from mmdet.registry import MODELS
from mmengine.logging import print_log

from ..compat import require_soft_teacher_call_order
from .pseudo_thresholds import STAGE_KEYS, PseudoThresholds

_KEY_OF = dict(STAGE_KEYS)


class PerClassPseudoThrMixin:
    """Per-class pseudo-label thresholds for a SoftTeacher (sub)class.

    Attributes:
        pseudo_thresholds (PseudoThresholds): thresholds in force and the
            policies' score window.
    """

    def __init__(self, *args, **kwargs) -> None:
        require_soft_teacher_call_order()
        super().__init__(*args, **kwargs)
        self.pseudo_thresholds = PseudoThresholds(self.semi_train_cfg,
                                                  self._pseudo_num_classes())
        self._recording_raw = False
        self._filter_failure = None
        self.pseudo_threshold_hook_attached = False
        self.competence_hook_attached = False
        self._warned_no_hook = False

    def _pseudo_num_classes(self) -> int:
        student = self.student
        head = (student.roi_head.bbox_head if hasattr(student, 'roi_head')
                else student.bbox_head)
        return int(head.num_classes)

    # ------------------------------------------------------ override points
    def filter_pseudo_instances(self, batch_data_samples: Sequence,
                                stage: str) -> Sequence:
        """Keep the pseudo boxes with ``score > thr[stage][label]`` (in place).

        Args:
            batch_data_samples: Data samples whose ``gt_instances`` carry
                ``scores`` and ``labels``.
            stage: ``'initial'``, ``'rpn'`` or ``'cls'``.

        Returns:
            ``batch_data_samples``, filtered like mmdet's
            ``filter_gt_instances`` (empty instance sets are left alone).
        """
        if stage not in self.pseudo_thresholds.stages:
            return batch_data_samples
        if self._filter_failure is None:
            try:
                return self._filter_per_class(batch_data_samples, stage)
            except Exception as exc:  # noqa: BLE001 - training must go on
                self._filter_failure = (
                    f'{type(self).__name__}: per-class pseudo-label filter '
                    f'failed ({type(exc).__name__}: {exc}); falling back to '
                    'one scalar threshold per stage (the median of the '
                    'configured values)')
                print_log(self._filter_failure, logger='current', level=30)
        fallback = self.pseudo_thresholds.stages[stage].fallback_scalar
        return filter_gt_instances(batch_data_samples, score_thr=fallback)

    def record_teacher_scores(self, batch_data_samples: Sequence) -> None:
        """Record the teacher's raw detections for the adaptive policies."""
        if not self.pseudo_thresholds.needs_scores:
            return
        for sample in batch_data_samples:
            inst = sample.gt_instances
            self.pseudo_thresholds.record(inst.labels.tolist(),
                                          inst.scores.tolist())

    def calibrate_pseudo_thresholds(self, record: dict, iteration: int
                                    ) -> Dict[str, List[float]]:
        """Set ``calibrated`` thresholds from a validation competence
        record (:class:`~mmext.hooks.TeacherCompetenceHook` calls this).

        Returns:
            ``stage -> thresholds`` of the stages that were set.
        """
        return self.pseudo_thresholds.calibrate(record, iteration)

    def pseudo_thresholds_in_force(self) -> Dict[str, List[float]]:
        """``stage -> per-class thresholds`` used right now."""
        if self._filter_failure is not None:
            return {n: [s.fallback_scalar] * s.num_classes
                    for n, s in self.pseudo_thresholds.stages.items()}
        return self.pseudo_thresholds.in_force()

    # ------------------------------------------------ mmdet methods wrapped
    def loss(self, multi_batch_inputs, multi_batch_data_samples) -> dict:
        """mmdet's loss; warns once if a policy has no hook to update it."""
        if (self.pseudo_thresholds.has_policy
                and not self.pseudo_threshold_hook_attached
                and not self._warned_no_hook):
            self._warned_no_hook = True
            print_log(
                f'{type(self).__name__}: adaptive pseudo-label thresholds '
                "need dict(type='PseudoThresholdHook') in custom_hooks; "
                'without it they stay at warmup_thr', logger='current',
                level=30)
        calibrated = any(s.policy == 'calibrated'
                         for s in self.pseudo_thresholds.policies)
        if (calibrated and not self.competence_hook_attached
                and not self._warned_no_hook):
            self._warned_no_hook = True
            print_log(
                f'{type(self).__name__}: calibrated pseudo-label thresholds '
                "need dict(type='TeacherCompetenceHook') in custom_hooks and "
                'a validation; without them they stay at warmup_thr',
                logger='current', level=30)
        return super().loss(multi_batch_inputs, multi_batch_data_samples)

    @torch.no_grad()
    def get_pseudo_instances(self, batch_inputs, batch_data_samples):
        """mmdet's, with the initial filter made per class."""
        self._recording_raw = True
        try:
            with self._scalar_disabled('initial'):
                return super().get_pseudo_instances(batch_inputs,
                                                    batch_data_samples)
        finally:
            self._recording_raw = False

    def compute_uncertainty_with_aug(self, x, batch_data_samples):
        """Record raw scores and filter (initial stage), then mmdet's jitter."""
        if self._recording_raw:
            self._recording_raw = False
            self.record_teacher_scores(batch_data_samples)
            self.filter_pseudo_instances(batch_data_samples, 'initial')
        return super().compute_uncertainty_with_aug(x, batch_data_samples)

    def rpn_loss_by_pseudo_instances(self, x, batch_data_samples):
        """mmdet's, on pseudo labels filtered per class (rpn stage)."""
        samples = self._filtered_copy(batch_data_samples, 'rpn')
        with self._scalar_disabled('rpn'):
            return super().rpn_loss_by_pseudo_instances(x, samples)

    def rcnn_cls_loss_by_pseudo_instances(self, x, unsup_rpn_results_list,
                                          batch_data_samples, batch_info):
        """mmdet's, on pseudo labels filtered per class (cls stage)."""
        samples = self._filtered_copy(batch_data_samples, 'cls')
        with self._scalar_disabled('cls'):
            return super().rcnn_cls_loss_by_pseudo_instances(
                x, unsup_rpn_results_list, samples, batch_info)

    # -------------------------------------------------------------- helpers
    def _filter_per_class(self, batch_data_samples, stage: str):
        values = self.pseudo_thresholds.stages[stage].values
        for sample in batch_data_samples:
            inst = sample.gt_instances
            if inst.bboxes.shape[0] > 0:
                thr = torch.as_tensor(values, dtype=inst.scores.dtype,
                                      device=inst.scores.device)
                sample.gt_instances = inst[inst.scores > thr[inst.labels]]
        return batch_data_samples

    def _filtered_copy(self, batch_data_samples, stage: str):
        if stage not in self.pseudo_thresholds.stages:
            return batch_data_samples
        return self.filter_pseudo_instances(
            copy.deepcopy(batch_data_samples), stage)

    @contextlib.contextmanager
    def _scalar_disabled(self, stage: str):
        """mmdet's own scalar filter of ``stage`` keeps everything inside."""
        key = _KEY_OF[stage]
        if stage not in self.pseudo_thresholds.stages:
            yield
            return
        cfg = self.semi_train_cfg
        saved = cfg[key]
        cfg[key] = -math.inf
        try:
            yield
        finally:
            cfg[key] = saved


@MODELS.register_module()
class PerClassSoftTeacher(PerClassPseudoThrMixin, SoftTeacher):
    """mmdet's SoftTeacher with per-class pseudo-label thresholds.

    ``pseudo_label_initial_score_thr``, ``rpn_pseudo_thr`` and
    ``cls_pseudo_thr`` in ``semi_train_cfg`` each take a float (mmdet's
    behaviour, exactly), a list of ``num_classes`` floats, or a policy dict::

        semi_train_cfg=dict(
            pseudo_label_initial_score_thr=0.3,
            rpn_pseudo_thr=[0.42, 0.18, 0.34, 0.28, 0.5],
            cls_pseudo_thr=dict(type='proportion', warmup_thr=0.5,
                                update_interval=10, window_images=256),
            ...)

    Arguments are mmdet's SoftTeacher's (``detector``, ``semi_train_cfg``,
    ``semi_test_cfg``, ``data_preprocessor``, ``init_cfg``).
    """
