"""PseudoThresholdHook: update, log and checkpoint per-class pseudo thresholds.

Companion of :class:`~mmext.models.PerClassSoftTeacher` (or any detector
with :class:`~mmext.models.PerClassPseudoThrMixin`):

- ``before_train``: gives the proportion policies their labeled-set priors
  (class shares and boxes per image of the labeled train dataset, ignored
  boxes left out) unless the config sets them; restores a resumed state.
- ``after_train_iter``: every ``update_interval`` iterations of a policy,
  gathers every process's recorded raw teacher scores (one
  ``all_gather_object``, reached on every rank) and recomputes the
  thresholds, identical on every rank. Every iteration the thresholds in
  force go to the MessageHub as ``train/pseudo/thr_<stage>/<class>``, shown
  in the log line as ``pseudo/thr_cls/Chipped: 0.2310``.
- checkpoints: the state (thresholds, score window) is saved under
  ``meta['mmext']['PseudoThresholdHook']`` (SafeHook's contract) and
  restored on resume only (a ``load_from`` fine-tune starts from the
  configured warm-up values).

A policy that raises (e.g. the mixture fit) sends every stage back to its
configured values with one warning; training goes on.
"""
from typing import List

import numpy as np
from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.logging import print_log

from ..models.threshold_policies import class_priors
from ..utils import MMExtError
from .safe_hook import SafeHook


def _leaf_datasets(dataset) -> List[object]:
    inner = getattr(dataset, 'datasets', None)
    if inner is not None:
        return [leaf for ds in inner for leaf in _leaf_datasets(ds)]
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'get_data_info'):
        return _leaf_datasets(dataset.dataset)
    return [dataset]


def labeled_priors(dataset, num_classes: int) -> dict:
    """Class shares and boxes per image of the labeled leaves of a dataset.

    A leaf is labeled when some of its images have instances; ignored
    (``ignore_flag``) boxes are left out.

    Raises:
        MMExtError: no labeled boxes in the dataset.
    """
    labels, images = [], 0
    for leaf in _leaf_datasets(dataset):
        if not hasattr(leaf, 'get_data_info'):
            continue
        infos = [leaf.get_data_info(i) for i in range(len(leaf))]
        leaf_labels = [inst['bbox_label'] for info in infos
                       for inst in info.get('instances', [])
                       if not inst.get('ignore_flag', 0)]
        if leaf_labels:
            labels += leaf_labels
            images += len(infos)
    return class_priors(np.asarray(labels, np.int64), images, num_classes)


@HOOKS.register_module()
class PseudoThresholdHook(SafeHook):
    """Drive a per-class pseudo-threshold model: update, log, checkpoint.

    Args:
        log_per_class (bool): Put every class's threshold on the log line
            (else only the per-stage mean). Defaults to True.
    """

    priority = 'NORMAL'
    collective = True
    legacy_state_keys = ('meta/mmext_pseudo_thresholds', )

    def __init__(self, log_per_class: bool = True) -> None:
        self.log_per_class = bool(log_per_class)
        self._model = None

    def before_train(self, runner) -> None:
        """Find the model, give it priors, restore a resumed state."""
        model = self.model_of(runner)
        if not hasattr(model, 'pseudo_thresholds'):
            raise MMExtError(
                f'model {type(model).__name__} has no per-class pseudo '
                "thresholds: use model=dict(type='PerClassSoftTeacher', ...) "
                'or PerClassPseudoThrMixin')
        self._model = model
        model.pseudo_threshold_hook_attached = True
        state = model.pseudo_thresholds
        names = self.dataset_classes(runner, state.num_classes)
        self.class_names = names
        if state.needs_priors():
            priors = labeled_priors(runner.train_dataloader.dataset,
                                    state.num_classes)
            state.set_priors(**priors)
            runner.logger.info(
                'PseudoThresholdHook: proportion priors from the labeled set: '
                f'{priors["boxes_per_image"]:.3f} boxes per image, class '
                'shares ' + ', '.join(
                    f'{n} {s:.3f}'
                    for n, s in zip(names, priors['class_shares'])))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Update due policies (all ranks together), then log."""
        state = self._model.pseudo_thresholds
        iteration = runner.iter + 1
        if state.due(iteration):
            gather = (dist.all_gather_object
                      if dist.get_world_size() > 1 else None)
            try:
                state.update(iteration, gather)
            except Exception as exc:  # noqa: BLE001 - fall back, go on
                reason = (f'PseudoThresholdHook: threshold policy failed at '
                          f'iteration {iteration} ({type(exc).__name__}: '
                          f'{exc}); every stage goes back to its configured '
                          'values for the rest of the run')
                state.fall_back(reason)
                print_log(reason, logger='current', level=30)
        self._publish(runner)

    def _publish(self, runner) -> None:
        hub = runner.message_hub
        for stage, values in self._model.pseudo_thresholds_in_force().items():
            hub.update_scalar(f'train/pseudo/thr_{stage}', float(
                np.mean(values)))
            if self.log_per_class:
                for name, v in zip(self.class_names, values):
                    hub.update_scalar(f'train/pseudo/thr_{stage}/{name}',
                                      float(v))

    def state_dict(self) -> dict:
        """Thresholds and the score window of the model."""
        return self._model.pseudo_thresholds.state_dict()

    def load_state_dict(self, state: dict, runner) -> None:
        """Give the model its resumed thresholds (same configuration)."""
        if not self._model.pseudo_thresholds.load_state_dict(state):
            print_log('PseudoThresholdHook: the checkpoint holds '
                      'thresholds of another configuration; starting '
                      'from the configured values', logger='current',
                      level=30)
