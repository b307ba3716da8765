"""SupervisedBurnInHook: train on labeled images only first, then ramp in
the unlabeled loss.

The peers start Soft Teacher from a teacher that can already detect:
Unbiased Teacher burns in for 2,000 iterations, Dense Teacher for 5,000,
Consistent-Teacher keeps the unsupervised weight at 0 for its first 10k
iterations, LabelMatch ``load_from``s a converged supervised model. This hook
does the same for mmdet's ``SoftTeacher`` (and every subclass): before each
training iteration it sets ``semi_train_cfg['unsup_weight']``, which
``SoftTeacher.loss_by_pseudo_instances`` multiplies the unsupervised losses
with, to::

    w(i) = 0                                  i <  burn_in_iters
    w(i) = w0 * (i - burn_in_iters) / ramp    burn_in_iters <= i < +ramp
    w(i) = w0                                 after

with ``w0`` the configured weight and ``i`` the 0-based iteration about to
run. The weight depends on the iteration only: equal on every process and
right after a resume, with no state to save. The teacher keeps following
the student by EMA (``MeanTeacherHook``) during the burn-in, so it is the
supervised model when pseudo labels start to count. The weight goes to the
log as ``unsup_weight``.

The other way, as LabelMatch does: train the supervised config first, then
the Soft Teacher config with ``load_from`` of its last checkpoint (see
docs/per_class_thresholds.md).
"""
from mmdet.registry import HOOKS

from ..utils import MMExtError
from .safe_hook import SafeHook


def burn_in_weight(iteration: int, burn_in_iters: int, ramp_iters: int,
                   full_weight: float) -> float:
    """The unsupervised loss weight before 0-based ``iteration`` (see the
    module docstring)."""
    if iteration < burn_in_iters:
        return 0.0
    if ramp_iters <= 0 or iteration >= burn_in_iters + ramp_iters:
        return float(full_weight)
    return float(full_weight) * (iteration - burn_in_iters) / ramp_iters


@HOOKS.register_module()
class SupervisedBurnInHook(SafeHook):
    """Unsupervised loss weight 0 for ``burn_in_iters``, then a linear ramp.

    Args:
        burn_in_iters (int): Iterations on the supervised loss alone.
        ramp_iters (int): Iterations over which the weight then rises
            linearly to the configured ``unsup_weight``. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self, burn_in_iters: int, ramp_iters: int = 0) -> None:
        for name, value in (('burn_in_iters', burn_in_iters),
                            ('ramp_iters', ramp_iters)):
            if not isinstance(value, int) or isinstance(value, bool) \
                    or value < 0:
                raise MMExtError(f'SupervisedBurnInHook: {name} must be an '
                                 f'integer >= 0, got {value!r}')
        self.burn_in_iters = burn_in_iters
        self.ramp_iters = ramp_iters
        self._cfg = None
        self._full_weight = 1.0

    def before_train(self, runner) -> None:
        """Find ``semi_train_cfg`` and remember the configured weight."""
        model = self.model_of(runner)
        cfg = getattr(model, 'semi_train_cfg', None)
        if cfg is None:
            raise MMExtError(
                f'SupervisedBurnInHook: model {type(model).__name__} has no '
                'semi_train_cfg (a SoftTeacher-like model is needed)')
        self._cfg = cfg
        self._full_weight = float(cfg.get('unsup_weight', 1.0))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Set this iteration's weight and log it."""
        weight = burn_in_weight(runner.iter, self.burn_in_iters,
                                self.ramp_iters, self._full_weight)
        self._cfg['unsup_weight'] = weight
        runner.message_hub.update_scalar('train/unsup_weight', weight)

    def after_train(self, runner) -> None:
        """Give the configured weight back."""
        self.on_disable()

    def on_disable(self) -> None:
        """A failing hook must not leave the unlabeled loss switched off."""
        if self._cfg is not None:
            self._cfg['unsup_weight'] = self._full_weight
