"""Rules that turn the teacher's recent scores into per-class thresholds.

A pseudo-label threshold of one Soft Teacher stage is written in
``semi_train_cfg`` as one of:

* a float: one threshold for every class (mmdet's SoftTeacher);
* a list of ``num_classes`` floats: a fixed threshold per class;
* a policy dict, recomputed from the teacher's recent raw detections:

  - ``dict(type='proportion', ...)``: LabelMatch's rule (Chen et al., CVPR
    2022). The labeled set says how many boxes of class c an image holds on
    average, ``e_c = boxes_per_image * share_c``. Over a window of ``n``
    unlabeled images the teacher is expected to find ``k_c = round(fraction *
    e_c * n)`` objects of class c; the threshold is the score of the
    ``(k_c + 1)``-th highest raw score of the class, so that ``score > thr``
    keeps its ``k_c`` highest boxes (all of them, down to ``floor``, when the
    teacher found fewer).
  - ``dict(type='gmm', ...)``: Consistent-Teacher's rule (Wang et al., CVPR
    2023). A two-component 1-D Gaussian mixture is fitted to the class's raw
    scores (scikit-learn, means initialised at the minimum and maximum score,
    equal weights, unit precisions). ``mode='high'``: the threshold is the
    lowest score of the high component that is at least the score of that
    component's most likely sample; ``mode='middle'``: the lowest score
    assigned to the high component.

  - ``dict(type='fixed', values=[...], warmup_iters=N)``: per-class
    ``values`` from iteration ``N`` on, ``warmup_thr`` before. For
    thresholds measured late in a run (``plot_pseudo_stats.py
    --write-config``): a teacher trained from scratch scores every box near
    ``1 / (num_classes + 1)`` at first, and a low per-class threshold from
    iteration 0 lets that noise in.

  - ``dict(type='calibrated', precision_target=0.5, confidence=0.9,
    not_reached='configured')``: thresholds justified by the teacher's
    competence on the labeled validation set. After every validation
    (:class:`~mmext.hooks.TeacherCompetenceHook`), per class the lowest
    score threshold at which a one-sided Wilson lower bound (``confidence``)
    of the teacher's validation precision reaches ``precision_target``
    (:func:`mmext.runs.teacher_competence.calibrated_threshold`), clipped to
    ``[floor, ceiling]``. A class that never reaches it is not lowered: it
    keeps ``warmup_thr`` (``not_reached='configured'``) or gets ``ceiling``
    (``'ceiling'``). From ``warmup_iters`` on (e.g. after a supervised
    burn-in); ``warmup_thr`` before the first validation.

  Arguments shared by all: ``warmup_thr`` (float or per-class list; used
  until a class has ``min_scores`` scores in the window, before
  ``warmup_iters`` iterations (default 0), and after an internal error),
  ``min_scores`` (default 20), ``update_interval
  (iterations between updates, default 10), ``window_images`` (the last this
  many unlabeled images, over all processes, default 256), ``floor`` and
  ``ceiling`` (clip, defaults 0.05 and 0.95). ``proportion`` also takes
  ``fraction`` (default 1.0) and optionally ``class_shares`` (per class,
  summing to 1) and ``boxes_per_image``; when they are not given,
  :class:`~mmext.hooks.PseudoThresholdHook` reads them from the labeled
  train dataset. ``gmm`` takes ``mode`` (``'high'``, default, or
  ``'middle'``).

Every function here is pure (numpy in, numpy out): the state, the window of
scores and the multi-process gathering live in
:class:`~mmext.models.pseudo_thresholds.PseudoThresholds`.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ..utils import MMExtError

#: Keys every policy dict accepts, with defaults.
COMMON_DEFAULTS = dict(warmup_thr=0.5, min_scores=20, update_interval=10,
                       window_images=256, floor=0.05, ceiling=0.95,
                       warmup_iters=0)
#: Extra keys (with defaults) per policy type.
POLICY_DEFAULTS = {
    'proportion': dict(fraction=1.0, class_shares=None, boxes_per_image=None),
    'gmm': dict(mode='high'),
    'fixed': dict(values=None),
    'calibrated': dict(precision_target=0.5, confidence=0.9,
                       not_reached='configured'),
}
#: Policies that compute from the teacher's scores on unlabeled images.
SCORE_POLICIES = ('proportion', 'gmm')

ThresholdSpec = Union[float, Sequence[float], dict]


def proportion_threshold(scores: np.ndarray, expected: float, floor: float,
                         ceiling: float) -> float:
    """LabelMatch's threshold for one class.

    Args:
        scores: (n,) raw teacher scores of the class in the window.
        expected: Boxes of the class expected in the window (``fraction *
            e_c * n_images``); rounded to the nearest integer ``k``.
        floor: Lowest threshold returned.
        ceiling: Highest threshold returned.

    Returns:
        The ``(k + 1)``-th highest score, clipped to ``[floor, ceiling]``;
        ``floor`` when there are at most ``k`` scores.
    """
    k = int(round(float(expected)))
    ordered = np.sort(np.asarray(scores, np.float64))[::-1]
    thr = floor if k >= ordered.size else float(ordered[k])
    return float(np.clip(thr, floor, ceiling))


def gmm_threshold(scores: np.ndarray, mode: str, floor: float,
                  ceiling: float, fallback: float) -> float:
    """Consistent-Teacher's threshold for one class.

    Args:
        scores: (n,) raw teacher scores of the class in the window.
        mode: ``'high'`` or ``'middle'`` (see the module docstring).
        floor: Lowest threshold returned.
        ceiling: Highest threshold returned.
        fallback: Returned (clipped) when no score falls in the high
            component.

    Returns:
        The threshold, clipped to ``[floor, ceiling]``.
    """
    from sklearn.mixture import GaussianMixture
    x = np.asarray(scores, np.float64).reshape(-1, 1)
    gmm = GaussianMixture(
        n_components=2, weights_init=[0.5, 0.5],
        means_init=[[x.min()], [x.max()]], precisions_init=[[[1.0]], [[1.0]]],
        random_state=0)
    gmm.fit(x)
    assignment = gmm.predict(x)
    high = assignment == 1
    if not high.any():
        thr = fallback
    elif mode == 'middle':
        thr = float(x[high].min())
    else:
        likelihood = gmm.score_samples(x)
        likelihood[~high] = -np.inf
        most_likely = x[int(np.argmax(likelihood)), 0]
        thr = float(x[high & (x[:, 0] >= most_likely)].min())
    return float(np.clip(thr, floor, ceiling))


def class_priors(labels: np.ndarray, num_images: int,
                 num_classes: int) -> Dict[str, object]:
    """Class shares and boxes per image of a labeled set (for ``proportion``).

    Args:
        labels: (N,) 0-based class of every (non-ignored) labeled box.
        num_images: Labeled images.
        num_classes: Number of classes.

    Raises:
        MMExtError: no labeled boxes.
    """
    counts = np.bincount(np.asarray(labels, np.int64),
                         minlength=num_classes)[:num_classes].astype(float)
    if counts.sum() <= 0 or num_images <= 0:
        raise MMExtError('proportion policy: the labeled set has no boxes')
    return {'class_shares': (counts / counts.sum()).tolist(),
            'boxes_per_image': float(counts.sum() / num_images)}


class StageThreshold:
    """The threshold of one stage: fixed (float or list) or a policy.

    Args:
        name: Stage name (``initial``, ``rpn``, ``cls``), for messages.
        spec: Float, list of ``num_classes`` floats, or a policy dict.
        num_classes: Number of classes.

    Raises:
        MMExtError: a malformed spec (wrong length, out of [0, 1], unknown
            policy type or argument).
    """

    def __init__(self, name: str, spec: ThresholdSpec,
                 num_classes: int) -> None:
        self.name = name
        self.num_classes = int(num_classes)
        self.policy: Optional[str] = None
        self.args: dict = {}
        if isinstance(spec, dict):
            self._parse_policy(dict(spec))
            self.fixed = self._per_class(self.args['warmup_thr'],
                                         'warmup_thr')
        else:
            self.fixed = self._per_class(spec, 'threshold')
        #: Thresholds in force, (C,) float64.
        self.values = self.fixed.copy()
        #: Per class: True where the policy (not the warm-up) set the value.
        self.adapted = np.zeros(self.num_classes, bool)

    @property
    def is_scalar(self) -> bool:
        """A fixed threshold equal for all classes."""
        return self.policy is None and bool(np.all(self.fixed == self.fixed[0]))

    @property
    def fallback_scalar(self) -> float:
        """One threshold for all classes after an internal error: the median
        of the configured values (the float itself for a float spec)."""
        return float(np.median(self.fixed))

    def _per_class(self, value, what: str) -> np.ndarray:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            arr = np.full(self.num_classes, float(value))
        elif isinstance(value, (list, tuple)):
            if len(value) != self.num_classes or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in value):
                raise MMExtError(
                    f'semi_train_cfg {self.name}: {what} list needs '
                    f'{self.num_classes} numbers (one per class), got '
                    f'{value!r}')
            arr = np.asarray(value, np.float64)
        else:
            raise MMExtError(
                f'semi_train_cfg {self.name}: {what} must be a float, a list '
                f'of {self.num_classes} floats or a policy dict, got '
                f'{value!r}')
        if not np.all(np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
            raise MMExtError(f'semi_train_cfg {self.name}: {what} values '
                             f'must be in [0, 1], got {arr.tolist()}')
        return arr

    def _parse_policy(self, spec: dict) -> None:
        spec.pop('_delete_', None)  # mmengine's merge marker, if left
        kind = spec.pop('type', None)
        if kind not in POLICY_DEFAULTS:
            raise MMExtError(
                f'semi_train_cfg {self.name}: unknown threshold policy '
                f'{kind!r} (known: {", ".join(POLICY_DEFAULTS)})')
        allowed = dict(COMMON_DEFAULTS, **POLICY_DEFAULTS[kind])
        unknown = sorted(set(spec) - set(allowed))
        if unknown:
            raise MMExtError(
                f'semi_train_cfg {self.name}: {kind} policy has no argument '
                f'{", ".join(unknown)} (known: {", ".join(sorted(allowed))})')
        args = dict(allowed, **spec)
        for key in ('min_scores', 'update_interval', 'window_images'):
            if not isinstance(args[key], int) or args[key] < 1:
                raise MMExtError(f'semi_train_cfg {self.name}: {key} must be '
                                 f'an integer >= 1, got {args[key]!r}')
        w = args['warmup_iters']
        if not isinstance(w, int) or isinstance(w, bool) or w < 0:
            raise MMExtError(f'semi_train_cfg {self.name}: warmup_iters must '
                             f'be an integer >= 0, got {w!r}')
        for key in ('floor', 'ceiling'):
            v = args[key]
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise MMExtError(f'semi_train_cfg {self.name}: {key} must be '
                                 f'in [0, 1], got {v!r}')
        if args['floor'] > args['ceiling']:
            raise MMExtError(f'semi_train_cfg {self.name}: floor '
                             f'{args["floor"]} is above ceiling '
                             f'{args["ceiling"]}')
        if kind == 'proportion':
            self._check_proportion_args(args)
        elif kind == 'calibrated':
            self._check_calibrated_args(args)
        elif kind == 'fixed':
            if args['values'] is None:
                raise MMExtError(f'semi_train_cfg {self.name}: fixed policy '
                                 'needs values (a float or one per class)')
            self.fixed_values = self._per_class(args['values'], 'values')
        elif args['mode'] not in ('high', 'middle'):
            raise MMExtError(f'semi_train_cfg {self.name}: gmm mode must be '
                             f"'high' or 'middle', got {args['mode']!r}")
        self.policy, self.args = kind, args

    def _check_calibrated_args(self, args: dict) -> None:
        checks = (('precision_target', lambda v: 0 < v <= 1, '(0, 1]'),
                  ('confidence', lambda v: 0.5 <= v < 1, '[0.5, 1)'))
        for key, ok, where in checks:
            v = args[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) \
                    or not ok(v):
                raise MMExtError(f'semi_train_cfg {self.name}: {key} must be '
                                 f'in {where}, got {v!r}')
        if args['not_reached'] not in ('configured', 'ceiling'):
            raise MMExtError(f'semi_train_cfg {self.name}: not_reached must '
                             "be 'configured' or 'ceiling', got "
                             f"{args['not_reached']!r}")

    def calibrate(self, record: dict, iteration: int) -> bool:
        """Set a ``calibrated`` policy's thresholds from a competence record.

        Args:
            record: A :mod:`mmext.runs.teacher_competence` record (one
                validation), classes in label order.
            iteration: The training iteration of the validation.

        Returns:
            True if the thresholds were set (a calibrated policy, at or after
            ``warmup_iters``, with a record of this many classes).
        """
        from ..runs.teacher_competence import calibrated_threshold
        a = self.args
        if self.policy != 'calibrated' or iteration < a['warmup_iters'] \
                or len(record['classes']) != self.num_classes:
            return False
        values = self.fixed.copy()
        adapted = np.zeros(self.num_classes, bool)
        for c, name in enumerate(record['classes']):
            thr = calibrated_threshold(
                record['thresholds'], record['tp'][name], record['fp'][name],
                a['precision_target'], a['confidence'])
            if thr is not None:
                values[c] = float(np.clip(thr, a['floor'], a['ceiling']))
                adapted[c] = True
            elif a['not_reached'] == 'ceiling':
                values[c] = a['ceiling']
        self.values, self.adapted = values, adapted
        return True

    def _check_proportion_args(self, args: dict) -> None:
        f = args['fraction']
        if not isinstance(f, (int, float)) or not 0 < f <= 10:
            raise MMExtError(f'semi_train_cfg {self.name}: fraction must be '
                             f'in (0, 10], got {f!r}')
        shares = args['class_shares']
        if shares is not None:
            arr = self._per_class(shares, 'class_shares')
            if abs(arr.sum() - 1) > 1e-3:
                raise MMExtError(f'semi_train_cfg {self.name}: class_shares '
                                 f'must sum to 1, got {arr.sum():.4f}')
        bpi = args['boxes_per_image']
        if bpi is not None and (not isinstance(bpi, (int, float))
                                or not bpi > 0):
            raise MMExtError(f'semi_train_cfg {self.name}: boxes_per_image '
                             f'must be > 0, got {bpi!r}')

    def set_priors(self, class_shares: Sequence[float],
                   boxes_per_image: float) -> None:
        """Fill the proportion policy's labeled-set priors if not configured."""
        if self.policy != 'proportion':
            return
        if self.args['class_shares'] is None:
            self.args['class_shares'] = list(map(float, class_shares))
        if self.args['boxes_per_image'] is None:
            self.args['boxes_per_image'] = float(boxes_per_image)

    def compute(self, class_scores: List[np.ndarray], num_images: int,
                iteration: Optional[int] = None) -> np.ndarray:
        """New per-class thresholds from the window's raw scores.

        Args:
            class_scores: Per class, the raw teacher scores in the window.
            num_images: Unlabeled images the window covers.
            iteration: The iteration just finished (1-based); before
                ``warmup_iters`` the warm-up values stay. None: no warm-up
                by iterations.

        Returns:
            (C,) thresholds; a class with fewer than ``min_scores`` scores
            keeps its warm-up value.

        Raises:
            MMExtError: a proportion policy without labeled-set priors.
        """
        if self.policy is None:
            return self.fixed.copy()
        if self.policy == 'calibrated':  # set by calibrate(), not by scores
            return self.values.copy()
        a = self.args
        if self.policy == 'proportion' and (a['class_shares'] is None
                                            or a['boxes_per_image'] is None):
            raise MMExtError(
                f'{self.name}: proportion policy without class_shares/'
                'boxes_per_image (add PseudoThresholdHook to custom_hooks or '
                'set them in the policy dict)')
        out = self.fixed.copy()
        self.adapted[:] = False
        if iteration is not None and iteration < a['warmup_iters']:
            return out
        if self.policy == 'fixed':
            self.adapted[:] = True
            return self.fixed_values.copy()
        for c, scores in enumerate(class_scores):
            if len(scores) < a['min_scores']:
                continue
            if self.policy == 'proportion':
                expected = (a['fraction'] * a['boxes_per_image']
                            * a['class_shares'][c] * num_images)
                out[c] = proportion_threshold(scores, expected, a['floor'],
                                              a['ceiling'])
            else:
                out[c] = gmm_threshold(scores, a['mode'], a['floor'],
                                       a['ceiling'], self.fixed[c])
            self.adapted[c] = True
        return out
