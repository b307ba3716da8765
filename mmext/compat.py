"""Every use of a private internal of mmengine, mmdet or faster-coco-eval.

Those packages may change a private attribute or call order in any release,
and mmext would then compute wrong numbers without an error. Each use lives
here, behind :func:`require_tested`, which stops with one line naming the
package, the installed version and the tested range when they differ.

Tested versions (the versions the suite runs on; ``requirements/`` pins
them): :data:`TESTED`.
"""
import importlib.metadata
import re
from typing import Callable, Dict, Tuple

from .utils import MMExtError

#: Package -> (lowest tested version, first untested version), as tuples.
TESTED: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {
    'mmengine': ((0, 10, 7), (0, 10, 8)),
    'mmdet': ((3, 3, 0), (3, 3, 1)),
    'faster-coco-eval': ((1, 8, 0), (1, 9, 0)),
}


def _version_tuple(text: str) -> Tuple[int, ...]:
    """``'1.8.0+cu121'`` -> (1, 8, 0); a pre-release suffix ends the tuple
    (``'1.0.0rc1'`` -> (1, 0, 0))."""
    parts = []
    for piece in text.split('+')[0].split('.'):
        match = re.match(r'\d+', piece)
        if not match:
            break
        parts.append(int(match.group()))
        if match.end() < len(piece):
            break
    return tuple(parts)


def _fmt(version: Tuple[int, ...]) -> str:
    return '.'.join(map(str, version))


def require_tested(package: str, what: str) -> None:
    """Raise unless ``package``'s installed version is in its tested range.

    Args:
        package: A key of :data:`TESTED` (the distribution name).
        what: The private internal about to be used (for the message).

    Raises:
        MMExtError: untested or missing version, in one line.
    """
    low, high = TESTED[package]
    try:
        installed = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise MMExtError(f'{package} is not installed ({what} needs it)'
                         ) from None
    if not low <= _version_tuple(installed) < high:
        raise MMExtError(
            f'{package} {installed} is untested with mmext: {what} relies on '
            f'a private internal tested on {_fmt(low)} <= version < '
            f'{_fmt(high)} (install a tested version)')


# ------------------------------------------------------------- mmengine
def save_checkpoint_now(checkpoint_hook, runner) -> None:
    """Write a checkpoint through ``CheckpointHook`` outside its schedule.

    mmengine has no public call for this; ``_save_checkpoint`` is the one
    its ``after_train_iter`` makes (file naming, ``max_keep_ckpts``, the
    ``last_checkpoint`` pointer).
    """
    require_tested('mmengine', 'CheckpointHook._save_checkpoint')
    checkpoint_hook._save_checkpoint(runner)


def mark_weights_loaded(runner) -> None:
    """Tell ``Runner.test()`` the weights are in (it would load again).

    ``Runner.test`` calls ``load_or_resume`` unless ``_has_loaded``.
    """
    require_tested('mmengine', 'Runner._has_loaded')
    runner._has_loaded = True


# ------------------------------------------------------ faster-coco-eval
def cocoeval_params(evaluation):
    """The parameters an evaluated ``COCOeval_faster`` used
    (``_paramsEval``: ``params`` as ``evaluate()`` resolved them)."""
    require_tested('faster-coco-eval', 'COCOeval._paramsEval')
    return evaluation._paramsEval


def fce_evaluate_accumulate() -> Callable:
    """faster-coco-eval's compiled ``COCOevalEvaluateAccumulate``.

    Called directly to rerun matching at one IoU on the IoUs an evaluation
    already computed (its Python API recomputes them).
    """
    require_tested('faster-coco-eval', 'faster_eval_api_cpp')
    from faster_coco_eval import faster_eval_api_cpp
    return faster_eval_api_cpp.COCOevalEvaluateAccumulate


# ----------------------------------------------------------------- mmdet
def require_soft_teacher_call_order() -> None:
    """:class:`~mmext.models.PerClassSoftTeacher` filters pseudo labels inside
    SoftTeacher's ``compute_uncertainty_with_aug``, which mmdet 3.3 calls
    right after its own initial filter in ``get_pseudo_instances``: a private
    call order, checked here when the model is built."""
    require_tested('mmdet', "SoftTeacher's pseudo-label call order")


def import_anchor_generator():
    """mmdet's ``AnchorGenerator`` without running ``mmdet.models``'
    ``__init__`` (every detector, seaborn, scipy.stats: 2-3 s), through
    mmdet's module layout (see :func:`mmext.utils.leaf_import.import_leaf`).
    """
    require_tested('mmdet', 'the module path of AnchorGenerator')
    from .utils.leaf_import import import_leaf
    return import_leaf(
        'mmdet.models.task_modules.prior_generators.anchor_generator',
        'mmdet.models').AnchorGenerator
