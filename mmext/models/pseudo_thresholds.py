"""Per-class pseudo-label thresholds of all stages, with their score window.

:class:`PseudoThresholds` is the state behind
:class:`~mmext.models.PerClassSoftTeacher`: one
:class:`~mmext.models.threshold_policies.StageThreshold` per stage, the raw
teacher scores recorded since the last update (``pending``, this process
only) and a window of the last images' scores (``window``, identical on every
process).

Multi-process: at an update every process hands its pending images to
``gather`` (an ``all_gather``); the images of all processes are appended in
rank order, so the windows, and the thresholds computed from them, are equal
everywhere. A policy sees each class's scores sorted, so its result depends
only on which images are in the window, not on their order: one process that
saw the same images computes the same thresholds.
"""
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .threshold_policies import SCORE_POLICIES, StageThreshold

#: Stage name -> semi_train_cfg key, in Soft Teacher's filter order.
STAGE_KEYS = (('initial', 'pseudo_label_initial_score_thr'),
              ('rpn', 'rpn_pseudo_thr'), ('cls', 'cls_pseudo_thr'))

#: One image's raw teacher detections: (labels, scores) as plain lists.
ImageScores = Tuple[List[int], List[float]]

STATE_VERSION = 1


class PseudoThresholds:
    """Thresholds in force per stage and class, and the policies' scores.

    Args:
        semi_train_cfg: The detector's ``semi_train_cfg`` (stage keys as in
            :data:`STAGE_KEYS`; a missing key leaves that stage out).
        num_classes: Number of classes.

    Raises:
        MMExtError: a malformed threshold spec.
    """

    def __init__(self, semi_train_cfg: dict, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.stages: Dict[str, StageThreshold] = {
            stage: StageThreshold(stage, semi_train_cfg[key], num_classes)
            for stage, key in STAGE_KEYS if semi_train_cfg.get(key) is not None
        }
        self.policies = [s for s in self.stages.values() if s.policy]
        self.window_images = max(
            [s.args['window_images'] for s in self.policies], default=0)
        self.pending: List[ImageScores] = []
        self.window: Deque[ImageScores] = deque(maxlen=self.window_images
                                                or None)
        self.last_update: int = 0
        self.failure: Optional[str] = None

    # ---------------------------------------------------------------- query
    @property
    def has_policy(self) -> bool:
        """True if any stage adapts its thresholds."""
        return bool(self.policies)

    @property
    def needs_scores(self) -> bool:
        """True if a policy computes from the teacher's scores."""
        return any(s.policy in SCORE_POLICIES for s in self.policies)

    def values(self, stage: str) -> np.ndarray:
        """(C,) thresholds in force for ``stage`` (a copy)."""
        return self.stages[stage].values.copy()

    def in_force(self) -> Dict[str, List[float]]:
        """``stage -> per-class thresholds`` as plain lists."""
        return {name: s.values.tolist() for name, s in self.stages.items()}

    def due(self, iteration: int) -> bool:
        """True if some policy updates after ``iteration`` (1-based)."""
        return self.failure is None and any(
            iteration % s.args['update_interval'] == 0 for s in self.policies
            if s.policy != 'calibrated')

    # --------------------------------------------------------------- update
    def record(self, labels: Sequence[int], scores: Sequence[float]) -> None:
        """Add one unlabeled image's raw teacher detections (this process)."""
        if self.needs_scores and self.failure is None:
            self.pending.append((list(map(int, labels)),
                                 list(map(float, scores))))

    def update(self, iteration: int,
               gather: Optional[Callable[[list], list]] = None) -> None:
        """Move pending scores into the window and recompute due policies.

        Args:
            iteration: The iteration just finished (1-based).
            gather: ``pending -> [pending of rank 0, rank 1, ...]``; None
                for one process.

        Raises:
            Exception: whatever a policy raises; the caller falls back with
                :meth:`fall_back` (the window is already updated, so every
                process stays in step).
        """
        mine, self.pending = self.pending, []
        for images in (gather(mine) if gather is not None else [mine]):
            self.window.extend(images)
        for stage in self.policies:
            if stage.policy == 'calibrated':
                continue
            if iteration % stage.args['update_interval'] == 0:
                scores, n = self.window_scores(stage.args['window_images'])
                stage.values = stage.compute(scores, n, iteration)
        self.last_update = int(iteration)

    def window_scores(self, num_images: int) -> Tuple[List[np.ndarray], int]:
        """Per class, the sorted scores of the last ``num_images`` images.

        Returns:
            (per-class ascending score arrays, number of images used).
        """
        images = list(self.window)[-num_images:]
        per_class: List[list] = [[] for _ in range(self.num_classes)]
        for labels, scores in images:
            for label, score in zip(labels, scores):
                if 0 <= label < self.num_classes:
                    per_class[label].append(score)
        return [np.sort(np.asarray(s, np.float64)) for s in per_class], len(
            images)

    def calibrate(self, record: dict, iteration: int
                  ) -> Dict[str, List[float]]:
        """Give every ``calibrated`` stage a validation competence record.

        Returns:
            ``stage -> thresholds`` of the stages that were set.
        """
        if self.failure is not None:
            return {}
        return {name: stage.values.tolist()
                for name, stage in self.stages.items()
                if stage.calibrate(record, iteration)}

    def fall_back(self, reason: str) -> None:
        """Stop adapting: every stage returns to its configured values."""
        self.failure = reason
        for stage in self.stages.values():
            stage.values = stage.fixed.copy()
            stage.adapted[:] = False
        self.pending = []

    def set_priors(self, class_shares: Sequence[float],
                   boxes_per_image: float) -> None:
        """Labeled-set priors for the proportion policies that need them."""
        for stage in self.policies:
            stage.set_priors(class_shares, boxes_per_image)

    def needs_priors(self) -> bool:
        """True if a proportion policy lacks its labeled-set priors."""
        return any(s.policy == 'proportion' and (
            s.args['class_shares'] is None or s.args['boxes_per_image'] is None)
                   for s in self.policies)

    # ----------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Plain-Python state (weights_only-safe) for the checkpoint meta."""
        return {
            'version': STATE_VERSION,
            'num_classes': self.num_classes,
            'stages': {n: {'policy': s.policy, 'values': s.values.tolist(),
                           'adapted': s.adapted.tolist()}
                       for n, s in self.stages.items()},
            'window': [list(img) for img in self.window],
            'last_update': self.last_update,
        }

    def load_state_dict(self, state: dict) -> bool:
        """Restore :meth:`state_dict`; False (nothing changed) if it does not
        fit this configuration (other classes, stages or policies)."""
        stages = state.get('stages', {})
        fits = (state.get('version') == STATE_VERSION
                and state.get('num_classes') == self.num_classes
                and set(stages) == set(self.stages) and all(
                    stages[n].get('policy') == s.policy
                    for n, s in self.stages.items()))
        if not fits:
            return False
        for name, stage in self.stages.items():
            if stage.policy:
                stage.values = np.asarray(stages[name]['values'], np.float64)
                stage.adapted = np.asarray(stages[name]['adapted'], bool)
        self.window.clear()
        self.window.extend((list(l), list(s)) for l, s in state['window'])
        self.last_update = int(state.get('last_update', 0))
        self.pending = []
        return True
