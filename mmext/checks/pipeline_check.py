"""Pipeline checks: run a config's real datasets and transforms on a sample.

Every dataset of the train loader (each Soft Teacher source) and the val
loader is built with mmdet's registry and a sample of its images is pushed
through its pipeline one transform at a time, into every branch of
``MultiBranch`` (sup, unsup_teacher, unsup_student). After each transform:

* the number of boxes may only change in a transform meant to drop boxes
  (:data:`BOX_DROPPING_TRANSFORMS`);
* the boxes must sit where the recorded ``homography_matrix`` puts the boxes
  as loaded (the first transform that breaks this is named);

at the end of each branch: boxes inside the output image, labels inside the
classes, the image content where the matrix says (edge correlation), and the
packed image's dtype and value range against the data preprocessor's
mean/std (uint8 0-255 vs float 0-1). The teacher and student views of an
unlabeled image must be related by ``H_student @ inv(H_teacher)``, the matrix
Soft Teacher projects pseudo boxes with: unlabeled images get their hidden
boxes (when the dataset has them) or a grid of probe boxes for this.
"""
import contextlib
import copy
import io
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.datasets.transforms import MultiBranch
from mmdet.registry import DATASETS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from mmext.utils.config import detector_cfg, is_labeled, iter_leaf_datasets
from mmext.checks.check_result import CheckResult, info_check, make_check
from mmext.checks.homography_check import box_errors, image_mismatch, project_boxes

#: Transforms allowed to change the number of boxes.
BOX_DROPPING_TRANSFORMS = frozenset({
    'FilterAnnotations', 'RandomCrop', 'MinIoURandomCrop', 'RandomCenterCropPad',
    'RandomAffine', 'RandomShift', 'Mosaic', 'CachedMosaic', 'MixUp',
    'CachedMixUp', 'CopyPaste', 'RandomErasing'
})
#: Transforms that load the boxes (the reference for later steps).
BOX_LOADING_TRANSFORMS = frozenset({'LoadAnnotations', 'LoadEmptyAnnotations'})

# check name -> severity
CHECKS = {
    'pipeline error': 'fail',
    'box count changed outside a filtering transform': 'fail',
    'boxes follow the recorded homography': 'fail',
    'boxes inside the output image': 'fail',
    'degenerate box after the pipeline': 'warn',
    'label outside the classes after the pipeline': 'fail',
    'image content follows the recorded homography': 'fail',
    'image dtype/range matches the data preprocessor': 'fail',
    'teacher/student boxes related by their homographies': 'fail',
    'teacher/student images related by their homographies': 'fail',
}


@dataclass
class DrawnSample:
    """Images and boxes of one sample before and after the pipeline.

    Args:
        title: Dataset and image name.
        panels: ``(caption, image HxWxC as loaded (BGR), (N, 4) boxes)``; the
            first panel is the loaded image with the loaded boxes.
    """
    title: str
    panels: List[Tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class _Trace:
    """What one branch carries along while its transforms run."""
    branch: str
    ref_boxes: Optional[np.ndarray] = None
    ref_labels: Optional[np.ndarray] = None
    ref_h: np.ndarray = field(default_factory=lambda: np.eye(3))
    img0: Optional[np.ndarray] = None
    img0_h: np.ndarray = field(default_factory=lambda: np.eye(3))
    broken_by: str = ''
    count_changed_by: str = ''
    final: Optional[dict] = None


class _Findings:
    """Problems and the number of items checked, per (scope, check)."""

    def __init__(self) -> None:
        self.problems: Dict[Tuple[str, str], List[str]] = defaultdict(list)
        self.totals: Dict[Tuple[str, str], int] = defaultdict(int)

    def add(self, scope: str, check: str, problem: str = '') -> None:
        self.totals[(scope, check)] += 1
        if problem:
            self.problems[(scope, check)].append(problem)

    def results(self) -> List[CheckResult]:
        return [
            make_check(check, scope, self.problems[(scope, check)], total,
                       severity=CHECKS[check])
            for (scope, check), total in sorted(self.totals.items())
        ]


def may_drop_boxes(transform) -> bool:
    """True for a box-dropping transform or a wrapper holding one.

    Wrappers (RandomChoice, RandAugment, RandomOrder, RandomApply, Compose)
    keep their transforms in ``.transforms``.
    """
    if type(transform).__name__ in BOX_DROPPING_TRANSFORMS:
        return True
    inner = getattr(transform, 'transforms', None)
    if inner is None:
        return False
    inner = inner if isinstance(inner, (list, tuple)) else [inner]
    return any(may_drop_boxes(t) for t in inner)


def _homography(results: dict) -> np.ndarray:
    h = results.get('homography_matrix')
    return np.eye(3) if h is None else np.asarray(h, dtype=np.float64)


def _boxes(results: dict) -> Optional[np.ndarray]:
    gt = results.get('gt_bboxes')
    if gt is None:
        return None
    gt = gt.tensor if hasattr(gt, 'tensor') else gt
    return np.asarray(gt.numpy() if hasattr(gt, 'numpy') else gt,
                      dtype=np.float64).reshape(-1, 4)


def _labels(results: dict, n: int) -> np.ndarray:
    labels = results.get('gt_bboxes_labels')
    return np.zeros(n, np.int64) if labels is None else np.asarray(labels).reshape(-1)


def probe_boxes(img_hw: Tuple[int, int], num: int = 9, size_frac: float = 0.1,
                seed: int = 12345) -> np.ndarray:
    """Boxes at fixed, irregular places inside the image, to follow.

    The places have no symmetry, so a flip or rotation missing from the
    recorded matrix cannot map the set onto itself.

    Args:
        img_hw: Image (height, width), pixels.
        num: Number of boxes.
        size_frac: Box side as a fraction of the shorter image side.
        seed: Seed of the places (fractions of the image in [0.15, 0.85]).
    """
    h, w = img_hw
    half = size_frac * min(h, w) / 2
    centres = np.random.default_rng(seed).uniform(0.15, 0.85, (num, 2)) * [w, h]
    return np.concatenate([centres - half, centres + half], axis=1).astype(np.float32)


def _inject_boxes(results: dict, num_classes: int) -> None:
    """Give an unlabeled image boxes to follow: its hidden ones or probes."""
    inst = [i for i in results.get('instances') or [] if 'bbox' in i]
    if inst:
        boxes = np.array([i['bbox'] for i in inst], dtype=np.float32)
        labels = np.array([i.get('bbox_label', 0) for i in inst], dtype=np.int64)
    else:
        boxes = probe_boxes(results['img'].shape[:2])
        labels = np.arange(len(boxes), dtype=np.int64) % max(1, num_classes)
    results['gt_bboxes'] = HorizontalBoxes(boxes)
    results['gt_bboxes_labels'] = labels
    results['gt_ignore_flags'] = np.zeros(len(boxes), dtype=bool)


class PipelineChecker:
    """Runs samples through a dataset's pipeline and records findings.

    Args:
        num_classes: Number of classes of the model.
        preprocessor_mean: The data preprocessor's mean (its scale tells
            whether it expects 0-255 or 0-1 images); None skips the check.
        tol_frac: Box position tolerance as a fraction of the output image's
            longer side (at least 2 px).
    """

    def __init__(self, num_classes: int,
                 preprocessor_mean: Optional[Sequence[float]] = None,
                 tol_frac: float = 0.01) -> None:
        self.num_classes = num_classes
        self.mean = None if preprocessor_mean is None else np.asarray(preprocessor_mean, float)
        self.tol_frac = tol_frac
        self.findings = _Findings()

    # -- one sample -------------------------------------------------------
    def run_sample(self, pipeline, results: dict, scope: str,
                   name: str) -> List[_Trace]:
        """Run one data info through a pipeline; return the finished branches."""
        finished: List[_Trace] = []
        self._run(pipeline.transforms, results, _Trace('main'), scope, name, finished)
        branches = {t.branch: t for t in finished}
        if 'unsup_teacher' in branches and 'unsup_student' in branches:
            self._check_teacher_student(branches['unsup_teacher'],
                                        branches['unsup_student'], scope, name)
        return finished

    def _run(self, transforms, results: dict, trace: _Trace, scope: str,
             name: str, finished: List[_Trace]) -> None:
        where = f'{scope}/{trace.branch}'
        for t in transforms:
            tname = type(t).__name__
            if isinstance(t, MultiBranch):
                for branch, sub in t.branch_pipelines.items():
                    child = copy.deepcopy(trace)
                    child.branch = branch
                    self._run(sub.transforms, copy.deepcopy(results), child,
                              scope, name, finished)
                return
            before = _boxes(results)
            pre = dict(results)
            try:
                out = t(results)
            except Exception as exc:  # a data check reports, never crashes
                self.findings.add(where, 'pipeline error',
                                  f'{name}: {tname}: {type(exc).__name__}: {exc}')
                return
            if out is None:
                return
            if 'inputs' in out and 'data_samples' in out:
                self._finish(trace, pre, out, where, name)
                finished.append(trace)
                return
            results = out
            self._after_step(trace, tname, before, results, where, name,
                             may_drop_boxes(t))
        self._finish(trace, results, None, where, name)
        finished.append(trace)

    def _after_step(self, trace: _Trace, tname: str, before: Optional[np.ndarray],
                    results: dict, where: str, name: str,
                    may_drop: bool = False) -> None:
        if trace.img0 is None and 'img' in results:
            trace.img0 = np.array(results['img'], copy=True)
            trace.img0_h = _homography(results)
        if tname in BOX_LOADING_TRANSFORMS:
            if tname == 'LoadEmptyAnnotations':
                _inject_boxes(results, self.num_classes)
            boxes = _boxes(results)
            trace.ref_boxes, trace.ref_h = boxes, _homography(results)
            trace.ref_labels = _labels(results, len(boxes))
            return
        after = _boxes(results)
        if before is None or after is None or trace.ref_boxes is None:
            return
        if len(after) != len(before) and not may_drop and not trace.count_changed_by:
            trace.count_changed_by = (f'{name}: {tname} changed {len(before)} '
                                      f'boxes to {len(after)}')
        if not trace.broken_by:
            err = self._box_error(trace, results, after)
            if err > self._tol(results):
                trace.broken_by = (f'{name}: after {tname} a box is {err:.1f} px '
                                   'from where the recorded homography puts it')

    def _tol(self, results: dict) -> float:
        return max(2.0, self.tol_frac * max(results['img'].shape[:2]))

    def _box_error(self, trace: _Trace, results: dict, boxes: np.ndarray) -> float:
        matrix = _homography(results) @ np.linalg.inv(trace.ref_h)
        errs = box_errors(trace.ref_boxes, trace.ref_labels, boxes,
                          _labels(results, len(boxes)), matrix,
                          results['img'].shape[:2])
        return float(errs.max()) if len(errs) else 0.0

    # -- end of a branch ----------------------------------------------------
    def _finish(self, trace: _Trace, results: dict, packed: Optional[dict],
                where: str, name: str) -> None:
        trace.final = results
        boxes = _boxes(results)
        if boxes is not None and trace.ref_boxes is not None:
            self.findings.add(where, 'boxes follow the recorded homography',
                              trace.broken_by)
            self.findings.add(where, 'box count changed outside a filtering transform',
                              trace.count_changed_by)
            self._check_inside(trace, results, boxes, where, name)
        if trace.img0 is not None and 'img' in results:
            matrix = _homography(results) @ np.linalg.inv(trace.img0_h)
            self.findings.add(where, 'image content follows the recorded homography',
                              _named(name, image_mismatch(trace.img0, results['img'], matrix)))
        if packed is not None:
            self.findings.add(where, 'image dtype/range matches the data preprocessor',
                              _named(name, self._dtype_problem(packed['inputs'])))

    def _check_inside(self, trace: _Trace, results: dict, boxes: np.ndarray,
                      where: str, name: str) -> None:
        # Boxes loaded after a Resize (mmdet's test pipelines) stay in the
        # original frame; compare them with the image mapped into that frame.
        in_img = project_boxes(boxes, image_from_box_frame(trace, results))
        h, w = results['img'].shape[:2]
        tol = 1.0
        outside = ((in_img[:, 0] < -tol) | (in_img[:, 1] < -tol)
                   | (in_img[:, 2] > w + tol) | (in_img[:, 3] > h + tol))
        self.findings.add(where, 'boxes inside the output image', _named(
            name, f'{int(outside.sum())} of {len(boxes)} boxes outside the '
            f'{w}x{h} image, e.g. {in_img[outside][:1].round(1).tolist()}'
            if outside.any() else ''))
        small = ((boxes[:, 2] - boxes[:, 0]) <= 0) | ((boxes[:, 3] - boxes[:, 1]) <= 0)
        self.findings.add(where, 'degenerate box after the pipeline', _named(
            name, f'{int(small.sum())} boxes with width or height <= 0'
            if small.any() else ''))
        labels = _labels(results, len(boxes))
        bad = (labels < 0) | (labels >= self.num_classes)
        self.findings.add(where, 'label outside the classes after the pipeline', _named(
            name, f'labels {sorted(set(labels[bad].tolist()))} with '
            f'{self.num_classes} classes' if bad.any() else ''))

    def _dtype_problem(self, inputs) -> str:
        arr = inputs.numpy() if hasattr(inputs, 'numpy') else np.asarray(inputs)
        if not np.isfinite(arr.astype(np.float64)).all():
            return f'{arr.dtype} image with NaN or inf values'
        lo, hi = float(arr.min()), float(arr.max())
        if self.mean is None:
            return ''
        if arr.shape[0] != len(self.mean):
            return (f'{arr.shape[0]} channels, the preprocessor normalises '
                    f'{len(self.mean)}')
        expects_255 = float(self.mean.max()) > 1.5
        if expects_255 and hi <= 1.0:
            return (f'{arr.dtype} image in [{lo:.3g}, {hi:.3g}] (0-1 scale) but the '
                    f'preprocessor mean {self.mean.tolist()} expects 0-255')
        if not expects_255 and hi > 1.5:
            return (f'{arr.dtype} image in [{lo:.3g}, {hi:.3g}] but the preprocessor '
                    f'mean {self.mean.tolist()} expects 0-1')
        if expects_255 and (lo < -0.5 or hi > 255.5):
            return f'{arr.dtype} image in [{lo:.3g}, {hi:.3g}], outside 0-255'
        return ''

    # -- teacher vs student ---------------------------------------------------
    def _check_teacher_student(self, teacher: _Trace, student: _Trace, scope: str,
                               name: str) -> None:
        where = f'{scope}/teacher->student'
        t_res, s_res = teacher.final, student.final
        matrix = _homography(s_res) @ np.linalg.inv(_homography(t_res))
        t_boxes, s_boxes = _boxes(t_res), _boxes(s_res)
        if t_boxes is not None and s_boxes is not None and len(t_boxes):
            errs = box_errors(t_boxes, _labels(t_res, len(t_boxes)), s_boxes,
                              _labels(s_res, len(s_boxes)), matrix,
                              s_res['img'].shape[:2])
            err = float(errs.max()) if len(errs) else 0.0
            self.findings.add(
                where, 'teacher/student boxes related by their homographies',
                f'{name}: a teacher box mapped by H_student @ inv(H_teacher) '
                f'lands {err:.1f} px from its student box'
                if err > self._tol(s_res) else '')
        self.findings.add(
            where, 'teacher/student images related by their homographies',
            _named(name, image_mismatch(t_res['img'], s_res['img'], matrix)))


def _named(name: str, problem: str) -> str:
    return f'{name}: {problem}' if problem else ''


def image_from_box_frame(trace: _Trace, results: dict) -> np.ndarray:
    """Matrix from the frame the boxes are in to the frame of the image.

    Boxes loaded at matrix ``H_ref`` move with every later transform, so they
    are in frame ``H @ inv(H_ref)`` of the original image; the image is in
    frame ``H @ inv(H_img0)``.
    """
    h = _homography(results)
    box_frame = h @ np.linalg.inv(trace.ref_h)
    img_frame = h @ np.linalg.inv(trace.img0_h)
    return img_frame @ np.linalg.inv(box_frame)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))


def build_config_datasets(cfg: Config) -> List[Tuple[str, object]]:
    """Build every real train dataset and the val dataset of a config.

    Returns:
        ``(scope, dataset)`` pairs; scope names the split and annotation file.

    Raises:
        MMExtError: from :func:`config_sources` for a config without loaders.
    """
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    built = []
    for split in ('train', 'val'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        for ds in iter_leaf_datasets(loader['dataset']):
            name = os.path.basename(str(ds.get('ann_file', '')).rstrip('/'))
            scope = f'{split}:{name}'
            # Soft Teacher's labeled and unlabeled parts may share a file.
            if any(s == scope for s, _ in built):
                scope += ' (unlabeled)' if not is_labeled(ds) else f' #{len(built)}'
            # pycocotools prints its progress to stdout; keep the report clean.
            with contextlib.redirect_stdout(io.StringIO()):
                built.append((scope, DATASETS.build(copy.deepcopy(ds))))
    return built


def preprocessor_mean(cfg: Config) -> Optional[List[float]]:
    """The mean of the detector's data preprocessor (unwrapping MultiBranch)."""
    pre = cfg.get('model', {}).get('data_preprocessor') or {}
    pre = pre.get('data_preprocessor', pre)
    if not pre.get('mean'):
        pre = detector_cfg(cfg.get('model', {})).get('data_preprocessor') or {}
    mean = pre.get('mean')
    return list(mean) if mean else None


def model_num_classes(cfg: Config, default: int) -> int:
    """``num_classes`` of the detector's bbox head, else ``default``."""
    det = detector_cfg(cfg.get('model', {}))
    for head in ('roi_head', 'bbox_head'):
        sub = det.get(head) or {}
        sub = sub.get('bbox_head', sub) if head == 'roi_head' else sub
        if isinstance(sub, dict) and 'num_classes' in sub:
            return int(sub['num_classes'])
    return default


def check_pipelines(cfg: Config, num_samples: int = 100, seed: int = 0,
                    num_drawn: int = 3) -> Tuple[List[CheckResult], List[DrawnSample]]:
    """Run a sample of every dataset of a config through its pipeline.

    Args:
        cfg: A loaded mmdet config (``--data-root`` already applied).
        num_samples: Images per dataset (fewer when the dataset is smaller).
        seed: Seed of the sample choice and of the random transforms.
        num_drawn: Samples per dataset kept with their images for drawing.

    Returns:
        ``(results, drawn)``: the check rows and the samples to draw.
    """
    datasets = build_config_datasets(cfg)
    classes = datasets[0][1].metainfo.get('classes', ()) if datasets else ()
    checker = PipelineChecker(model_num_classes(cfg, len(classes)), preprocessor_mean(cfg))
    drawn: List[DrawnSample] = []
    counts: Dict[str, Tuple[int, int]] = {}
    rng = np.random.default_rng(seed)
    for scope, dataset in datasets:
        n = len(dataset)
        picks = rng.choice(n, size=min(num_samples, n), replace=False)
        counts[scope] = (len(picks), n)
        for k, idx in enumerate(picks.tolist()):
            info = dataset.get_data_info(idx)
            name = os.path.basename(str(info.get('img_path', idx)))
            _seed_everything(seed * 100003 + idx)
            finished = checker.run_sample(dataset.pipeline, info, scope, name)
            if k < num_drawn:
                drawn.append(_drawn_sample(f'{scope} {name}', finished))
    results = checker.findings.results()
    results.append(info_check(
        'images run through the pipelines', 'pipeline',
        sum(k for k, _ in counts.values()), sum(n for _, n in counts.values()),
        '; '.join(f'{s} {k} of {n}' for s, (k, n) in counts.items())))
    return results, drawn


def _drawn_sample(title: str, finished: List[_Trace]) -> DrawnSample:
    sample = DrawnSample(title)
    for trace in finished:
        if trace.final is None or 'img' not in trace.final:
            continue
        if not sample.panels and trace.img0 is not None:
            # Boxes as loaded and the image as loaded are both in the
            # original frame.
            ref = trace.ref_boxes if trace.ref_boxes is not None else np.zeros((0, 4))
            sample.panels.append(('loaded', trace.img0, ref))
        boxes = _boxes(trace.final)
        boxes = np.zeros((0, 4)) if boxes is None else project_boxes(
            boxes, image_from_box_frame(trace, trace.final))
        sample.panels.append((trace.branch, np.asarray(trace.final['img']), boxes))
    return sample
