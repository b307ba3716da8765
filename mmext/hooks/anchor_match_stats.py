"""AnchorMatchStatsHook: how many anchors and proposals each GT box gets.

The user's plan (seed 004): "check positive anchor counts in logs, verify
increased matches for narrow boxes". Instead of re-implementing anchor
matching, this hook observes the detector's real assigners during the
supervised loss: the RPN head's ``assigner.assign`` (anchors -> GT) and the
RoI head's ``bbox_assigner.assign`` (RPN proposals -> GT). Each AssignResult's
``gt_inds`` (0 = negative, -1 = ignored, k > 0 = positive for GT k-1) is
counted per GT box and summed per class of that box.
"""
import json
import os
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.logging import print_log

from ..runs.files import ANCHOR_MATCH_STATS
from .safe_hook import SafeHook

STAGES = ('rpn', 'rcnn')
# Per class and stage: [GT boxes, positives summed over them, GT with none].
NUM_FIELDS = 3


def positives_per_gt(gt_inds: torch.Tensor, num_gts: int) -> torch.Tensor:
    """Number of positive priors assigned to each GT box.

    Args:
        gt_inds: ``AssignResult.gt_inds`` (0 negative, -1 ignored, k > 0 the
            1-based index of the GT box), one entry per prior.
        num_gts: Number of GT boxes of the image.

    Returns:
        Long tensor of shape (num_gts,).
    """
    pos = gt_inds[gt_inds > 0].long() - 1
    return torch.bincount(pos.cpu(), minlength=num_gts)[:num_gts]


def accumulate(table: torch.Tensor, labels: torch.Tensor,
               counts: torch.Tensor) -> None:
    """Add one image's per-GT positive counts to a per-class table in place.

    Args:
        table: (num_classes, 3) float64: GT boxes, positives, GT with none.
        labels: (num_gts,) class index of each GT box.
        counts: (num_gts,) positives of each GT box.
    """
    labels = labels.long().cpu()
    num_classes = table.shape[0]
    ok = (labels >= 0) & (labels < num_classes)
    labels, counts = labels[ok], counts[ok].double()
    table[:, 0] += torch.bincount(labels, minlength=num_classes).double()
    table[:, 1] += torch.bincount(labels, weights=counts,
                                  minlength=num_classes)
    table[:, 2] += torch.bincount(labels[counts == 0],
                                  minlength=num_classes).double()


def summarize(tables: Dict[str, torch.Tensor],
              class_names: Sequence[str]) -> Dict[str, Dict[str, dict]]:
    """Per stage and class: GT count, positives per GT, share with none.

    Args:
        tables: Stage -> (num_classes, 3) table from :func:`accumulate`.
        class_names: Names of the classes (index order).

    Returns:
        ``{stage: {class: {'num_gts', 'pos_per_gt', 'no_pos_share'}}}`` with
        the ratios None for a class without GT boxes; the pseudo-class
        ``'all'`` sums all classes.
    """
    out: Dict[str, Dict[str, dict]] = {}
    for stage, table in tables.items():
        rows = {name: table[i] for i, name in enumerate(class_names)}
        rows['all'] = table.sum(0)
        out[stage] = {}
        for name, (num_gts, pos, none) in rows.items():
            n = float(num_gts)
            out[stage][name] = dict(
                num_gts=int(n),
                pos_per_gt=float(pos) / n if n else None,
                no_pos_share=float(none) / n if n else None)
    return out


@HOOKS.register_module()
class AnchorMatchStatsHook(SafeHook):
    """Positive RPN anchors / R-CNN proposals per GT box, per class.

    At ``before_train`` the hook wraps, on the model instance only (the class
    and other models are untouched), the supervised loss entry point
    (``loss_by_gt_instances`` of a semi-supervised detector such as
    SoftTeacher, else the detector's ``loss``) and the assigners of the
    (student) detector. Assignments are counted only inside the supervised
    loss, so pseudo-labels of the unsupervised branch do not mix in.

    Every ``interval`` iterations the counts are summed over processes and
    written to the MessageHub (``train/anchor/<stage>_pos_per_gt/<class>``,
    ``train/anchor/<stage>_no_pos_share/<class>``, stage ``rpn`` or
    ``rcnn``) and, by rank 0, as one JSON line to ``<work_dir>/<out_file>``.
    R-CNN counts are of RPN proposals before the sampler adds the GT boxes
    themselves (``add_gt_as_proposals``), i.e. what the RPN delivers.

    Args:
        interval (int): Iterations per record. Defaults to 50.
        out_file (str): JSON-lines file name in the work_dir. Defaults to
            ``'anchor_match_stats.jsonl'``.
    """

    priority = 'NORMAL'
    collective = True
    legacy_state_keys = ('mmext_anchor_match_stats', )

    def __init__(self, interval: int = 50,
                 out_file: str = ANCHOR_MATCH_STATS) -> None:
        if interval < 1:
            raise ValueError(f'AnchorMatchStatsHook: interval must be >= 1, '
                             f'got {interval}')
        self.interval = interval
        self.out_file = out_file
        self.class_names: List[str] = []
        self.tables: Dict[str, torch.Tensor] = {}
        self.last_record: Optional[dict] = None
        self._pending_labels: Optional[List[torch.Tensor]] = None
        self._image_idx = {stage: 0 for stage in STAGES}

    # lifecycle --------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Find the detector and wrap its loss entry point and assigners."""
        model = self.model_of(runner)
        self.class_names = self.dataset_classes(runner)
        self._reset()
        if hasattr(model, 'student') and hasattr(model,
                                                 'loss_by_gt_instances'):
            detector, entry = model.student, (model, 'loss_by_gt_instances')
        else:
            detector, entry = model, (model, 'loss')
        self.wrap_method(*entry, self._recording_entry)
        self.wrap_method(detector.rpn_head.assigner, 'assign',
                         lambda f: self._counting_assign(f, 'rpn'))
        self.wrap_method(detector.roi_head.bbox_assigner, 'assign',
                         lambda f: self._counting_assign(f, 'rcnn'))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Every ``interval`` iterations: reduce, log, write, reset."""
        if (runner.iter + 1) % self.interval:
            return
        # All ranks reach this reduction before anything that may fail; a
        # counting failure on any rank travels with it (SafeHook.all_reduce)
        # and every rank disables the hook together.
        stacked = self.all_reduce(
            torch.stack([self.tables[s] for s in STAGES]))
        summary = summarize(dict(zip(STAGES, stacked)), self.class_names)
        record = dict(iter=runner.iter + 1, **summary)
        for stage, per_class in summary.items():
            for name, row in per_class.items():
                for field in ('pos_per_gt', 'no_pos_share'):
                    if row[field] is not None:
                        runner.message_hub.update_scalar(
                            f'train/anchor/{stage}_{field}/{name}',
                            row[field])
        for path in self.jsonl_files(runner):
            with open(path, 'a') as f:
                f.write(json.dumps(record) + '\n')
        self.last_record = record
        self._reset()

    def jsonl_files(self, runner) -> List[str]:
        """``<work_dir>/<out_file>``, written by rank 0."""
        if not dist.is_main_process():
            return []
        return [os.path.join(runner.work_dir, self.out_file)]

    def state_dict(self) -> dict:
        """The partial interval's counts (this rank's).

        Only rank 0 writes the checkpoint, so after a multi-process resume the
        partial interval holds rank 0's counts only; complete intervals are
        already in the JSON-lines file.
        """
        return dict(tables={k: v.clone() for k, v in self.tables.items()},
                    class_names=list(self.class_names),
                    last_record=self.last_record)

    def load_state_dict(self, state: dict, runner) -> None:
        """Restore :meth:`state_dict`'s counts (same classes only)."""
        if list(state['class_names']) != list(self.class_names):
            print_log('AnchorMatchStatsHook: the checkpoint counts other '
                      'classes; the partial interval starts afresh',
                      logger='current', level=30)
            return
        self.tables = {k: v.clone().double()
                       for k, v in state['tables'].items()}
        self.last_record = state['last_record']

    # wrappers ---------------------------------------------------------------
    def _reset(self) -> None:
        num = max(len(self.class_names), 1)
        self.tables = {s: torch.zeros(num, NUM_FIELDS, dtype=torch.float64)
                       for s in STAGES}

    def _recording_entry(self, original: Callable) -> Callable:
        hook = self

        def loss_with_recording(batch_inputs, batch_data_samples, *a, **kw):
            if hook.active:
                hook._pending_labels = [
                    ds.gt_instances.labels for ds in batch_data_samples]
                hook._image_idx = {stage: 0 for stage in STAGES}
            try:
                return original(batch_inputs, batch_data_samples, *a, **kw)
            finally:
                hook._pending_labels = None

        return loss_with_recording

    def _counting_assign(self, original: Callable, stage: str) -> Callable:
        hook = self

        def assign_with_counting(pred_instances, gt_instances, *a, **kw):
            result = original(pred_instances, gt_instances, *a, **kw)
            if hook._pending_labels is not None:
                # reported at the next interval, on all ranks at once
                hook.run_deferred(f'{stage} assign counting on rank '
                                  f'{dist.get_rank()}', hook._count, stage,
                                  result, len(gt_instances))
            return result

        return assign_with_counting

    def _count(self, stage: str, result, num_gts: int) -> None:
        """Count one image's assignment; images arrive in batch order."""
        idx = self._image_idx[stage]
        self._image_idx[stage] += 1
        labels = self._pending_labels[idx]
        if len(labels) != num_gts:
            raise RuntimeError(f'{stage} assign got {num_gts} GT boxes for '
                               f'image {idx}, the batch has {len(labels)}')
        accumulate(self.tables[stage], labels,
                   positives_per_gt(result.gt_inds, num_gts))
