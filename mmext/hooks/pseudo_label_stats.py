"""PseudoLabelStatsHook: what happens to the teacher's pseudo labels.

mmdet's SoftTeacher logs no pseudo-label numbers, so "unsup loss is 0" or
"the hard classes get no pseudo labels" goes unseen. This hook observes the
model (no subclass needed): at ``before_train`` it wraps, on the model
instance, ``get_pseudo_instances`` (what the teacher hands to the student),
``teacher.roi_head.predict`` (the teacher's raw detections, captured only
inside get_pseudo_instances) and ``project_pseudo_instances`` (the student
view's ``min_pseudo_bbox_wh`` filter). It needs a
:class:`~mmdet.models.SemiBaseDetector` (``teacher``, ``semi_train_cfg``,
``get_pseudo_instances``); any other model disables it with one warning.

Stages (boxes in original image pixels; the teacher's boxes are mapped back
with the inverse of the teacher view's ``homography_matrix``, as mmdet does):

- ``raw``: the teacher's detections (after its test_cfg NMS and score_thr);
- ``initial``: what ``get_pseudo_instances`` returned (SoftTeacher: score >
  ``pseudo_label_initial_score_thr``);
- ``rpn``, ``cls``: score > ``rpn_pseudo_thr`` / ``cls_pseudo_thr``;
- ``reg``: box-jitter uncertainty ``reg_uncs < reg_pseudo_thr``.

Thresholds are read from the model's ``semi_train_cfg``; a stage whose
threshold is not set there is left out.

Every iteration the counts are summed over processes (one ``all_reduce``);
every ``interval`` iterations (and at the last one) one record is written
(rank 0) to ``<work_dir>/pseudo_label_stats.jsonl`` and the main numbers go
to mmengine's MessageHub as ``train/pseudo/<key>``, so the text log line and
every visualizer backend show them as ``pseudo/<key>`` (e.g.
``pseudo/kept_ratio_cls/Severe_Rust``). Set ``interval`` to a multiple of the
LoggerHook interval: between records the log shows the last record's values.

JSON-lines schema (one object per interval; ``<stage>`` as above, ``<cls>``
a class name; ratios are null where the denominator is 0):

- ``iter`` (int): last iteration of the interval (1-based, as logged);
  ``first_iter`` (int): its first iteration.
- ``classes`` [str], ``stages`` [str], ``num_images`` (int): unlabeled
  images seen (over all processes).
- ``thresholds``: ``{initial, rpn, cls, reg: float, min_pseudo_bbox_wh}``
  in force at the record's last iteration; with a per-class model
  (:class:`~mmext.models.PerClassSoftTeacher`) ``initial``, ``rpn``,
  ``cls`` are per-class lists, and each image is counted with the
  thresholds in force when it was seen.
- ``counts`` ``{<stage>: {<cls>: int}}``; ``counts_total`` ``{<stage>: int}``.
- ``kept_ratio`` ``{<stage>: {<cls>: float}}`` = counts / raw counts of the
  class; ``kept_ratio_total`` ``{<stage>: float}``.
- ``boxes_per_image`` ``{<stage>: float}``; ``images_without``
  ``{<stage>: int}`` (images left with no pseudo box).
- ``score`` ``{<stage>: {<cls>|"all": {count, mean, q10, q25, median, q75,
  q90}}}``: mean exact, quantiles to one histogram bin.
- ``hist_bin_edges`` [B + 1 floats]; ``hist`` ``{<stage>: {<cls>: [B ints]}}``.
- ``student_view`` ``{in, kept}``: boxes before/after min_pseudo_bbox_wh.
- With ``gt_ann_file`` only: ``gt_images``, ``num_gt`` ``{<cls>: int}``,
  ``tp``, ``fp`` ``{<stage>: {<cls>: int}}``, ``precision``, ``recall``
  ``{<stage>: {<cls>|"all": float}}`` (IoU >= ``iou_thr``, same class),
  ``raw_tp_hist``, ``raw_fp_hist`` ``{<cls>: [B ints]}``.
"""
import json
import os.path as osp
from collections import deque
from typing import Deque, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmdet.structures.bbox import bbox_project
from mmengine import dist
from mmengine.logging import print_log

from ..data import load_coco
from ..utils import MMExtError
from ..utils.config import is_labeled, iter_leaf_datasets
from ..runs.files import PSEUDO_LABEL_STATS
from ..runs.pseudo_records import format_recommendation, recommend_thresholds
from .pseudo_label_record import tally_record
from .pseudo_label_tally import (ImageGT, PseudoLabelTally,
                                 stage_boxes_of_image, stages_for, tally_image)
from .safe_hook import SafeHook

WRAPPED = ('get_pseudo_instances', 'project_pseudo_instances')


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def load_gt_by_image(path: str,
                     class_names: Sequence[str]) -> Dict[object, ImageGT]:
    """Ground truth of an annotation file, keyed by file name and image id.

    Args:
        path: COCO json of the unlabeled split with its hidden boxes.
        class_names: The model's classes, in label order.

    Returns:
        ``basename(file_name) -> ImageGT`` and ``('id', image_id) -> ImageGT``.
    """
    table = load_coco(path, class_names)
    boxes = table.bboxes()
    out: Dict[object, ImageGT] = {}
    for iid, name in zip(table.image_ids, table.file_names):
        sel = table.image_id == iid
        gt = ImageGT(boxes[sel], table.label[sel], table.ignore[sel])
        out[osp.basename(name)] = gt
        out[('id', iid.item() if hasattr(iid, 'item') else iid)] = gt
    return out


@HOOKS.register_module()
class PseudoLabelStatsHook(SafeHook):
    """Per-class pseudo-label counts, kept ratios, scores and precision.

    Args:
        interval (int): Iterations per record. Defaults to 50.
        gt_ann_file (str, optional): COCO json with the hidden ground truth
            of the unlabeled split; enables precision/recall. A relative
            path is looked up under the ``data_root`` of the train datasets,
            then the working directory. Defaults to None.
        iou_thr (float): IoU for a pseudo box to match a GT box. Defaults to
            0.5.
        num_bins (int): Score histogram bins on [0, 1]. Defaults to 100
            (thresholds to 0.01).
        target_precision (float): Precision the recommended per-class
            threshold must reach (with ground truth). Defaults to 0.7.
        target_kept_ratio (float): Fraction of raw teacher boxes the other
            recommended threshold keeps. Defaults to 0.3.
        recommend_window (int): Recommend from the last this many records.
            Defaults to 5.
        hub_per_class_stages (Sequence[str]): Stages whose per-class kept
            ratio (and precision/recall) go to the log line; the JSON file
            has all. Defaults to ``('cls',)``.
        out_file (str): File name in the work_dir. Defaults to
            ``'pseudo_label_stats.jsonl'``.
        rank_files (bool): Also write each process's own (not summed)
            records to ``<out_file stem>_rank<r>.jsonl``; for checking a
            multi-process run. Defaults to False.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL), CheckpointHook
    collective = True
    legacy_state_keys = ('meta/mmext_pseudo_label_stats', )

    def __init__(self,
                 interval: int = 50,
                 gt_ann_file: Optional[str] = None,
                 iou_thr: float = 0.5,
                 num_bins: int = 100,
                 target_precision: float = 0.7,
                 target_kept_ratio: float = 0.3,
                 recommend_window: int = 5,
                 hub_per_class_stages: Sequence[str] = ('cls', ),
                 out_file: str = PSEUDO_LABEL_STATS,
                 rank_files: bool = False) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        if not 0 < iou_thr <= 1:
            raise ValueError(f'iou_thr must be in (0, 1], got {iou_thr}')
        self.interval = int(interval)
        self.gt_ann_file = gt_ann_file
        self.iou_thr = float(iou_thr)
        self.num_bins = int(num_bins)
        self.target_precision = float(target_precision)
        self.target_kept_ratio = float(target_kept_ratio)
        self.recommend_window = int(recommend_window)
        self.hub_per_class_stages = tuple(hub_per_class_stages)
        self.out_file = out_file
        self.rank_files = bool(rank_files)
        self._model = None
        self._in_pseudo = False
        self._raw: List[tuple] = []

    # ------------------------------------------------------------ lifecycle
    def before_train(self, runner) -> None:
        """Find the model, read thresholds and GT, wrap the model methods."""
        model = self.model_of(runner)
        needs = ('teacher', 'semi_train_cfg', 'get_pseudo_instances')
        if not all(hasattr(model, n) for n in needs):
            raise MMExtError(
                f'model {type(model).__name__} is not a semi-supervised '
                'detector: PseudoLabelStatsHook needs a SemiBaseDetector '
                '(teacher, semi_train_cfg, get_pseudo_instances), e.g. '
                "model=dict(type='SoftTeacher', ...)")
        self._model = model
        cfg = model.semi_train_cfg
        self.class_names = self.dataset_classes(runner)
        self.stages = stages_for(cfg, hasattr(model.teacher, 'roi_head'))
        self.thresholds = self._thresholds_in_force()
        self._local = PseudoLabelTally(self.stages, len(self.class_names),
                                       self.num_bins)
        self._interval = self._local.empty_like()
        self._rank_interval = self._local.empty_like()
        self._window: Deque[np.ndarray] = deque(maxlen=self.recommend_window)
        self._first_iter = runner.iter + 1
        self._gt = self._load_gt(runner)
        self._wrap(model)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Sum this iteration over processes; every interval, publish."""
        local = self._local.to_vector()
        if self.rank_files:
            self._rank_interval.add(self._local)
        self._local.reset()
        # Always reached on every rank, failure flag included, so all ranks
        # agree on disabling and no collective is left waiting.
        local = self.all_reduce(local)
        delta = self._local.empty_like()
        delta.load_vector(local)
        self._interval.add(delta)
        if (self.every_n_train_iters(runner, self.interval)
                or self.is_last_train_iter(runner)):
            self._publish(runner)

    def after_train(self, runner) -> None:
        """Print the recommended per-class thresholds (the model gets its
        methods back from SafeHook)."""
        if not self._window or not dist.is_main_process():
            return
        rows = self.recommendation()
        runner.logger.info(
            f'PseudoLabelStatsHook, from the last {len(self._window)} '
            f'records of {self.out_file}:\n' + format_recommendation(
                rows, self.target_precision, self.target_kept_ratio))

    def state_dict(self) -> dict:
        """The interval tally and the recommendation window."""
        return {
            'stages': list(self.stages),
            'classes': list(self.class_names),
            'num_bins': self.num_bins,
            'first_iter': self._first_iter,
            'interval': self._interval.to_vector().tolist(),
            'window': [v.tolist() for v in self._window],
        }

    def load_state_dict(self, state: dict, runner) -> None:
        """Restore the tally of the same stages, classes and bins."""
        same = (state.get('stages') == list(self.stages)
                and state.get('classes') == list(self.class_names)
                and state.get('num_bins') == self.num_bins)
        if not same:
            print_log('PseudoLabelStatsHook: the checkpoint holds statistics '
                      'of other stages/classes/bins; starting afresh',
                      logger='current', level=30)
            return
        self._interval.load_vector(state['interval'])
        self._window.extend(np.asarray(v) for v in state['window'])
        self._first_iter = int(state['first_iter'])

    def jsonl_files(self, runner) -> List[str]:
        """The summed records (rank 0) and this rank's own (rank_files)."""
        return self._out_paths(runner)

    # ------------------------------------------------------------- results
    def recommendation(self) -> List[dict]:
        """Per-class thresholds from the last ``recommend_window`` records."""
        tally = self._local.empty_like()
        for vec in self._window:
            t = tally.empty_like()
            t.load_vector(vec)
            tally.add(t)
        has_gt = tally['gt_images'] > 0
        return recommend_thresholds(
            tally['hist'][0],
            tally['raw_tp_hist'] if has_gt else None,
            tally['raw_fp_hist'] if has_gt else None,
            tally['num_gt'] if has_gt else None, self.class_names,
            self.target_precision, self.target_kept_ratio)

    # ------------------------------------------------------------- helpers
    def _thresholds_in_force(self) -> dict:
        """Thresholds as the model applies them now: per-class lists for a
        :class:`~mmext.models.PerClassPseudoThrMixin` model (they change as
        its policies update), mmdet's scalars otherwise."""
        cfg = self._model.semi_train_cfg
        out = {
            'initial': cfg.get('pseudo_label_initial_score_thr'),
            'rpn': cfg.get('rpn_pseudo_thr'),
            'cls': cfg.get('cls_pseudo_thr'),
            'reg': cfg.get('reg_pseudo_thr'),
            'min_pseudo_bbox_wh': list(cfg.get('min_pseudo_bbox_wh',
                                               (1e-2, 1e-2))),
        }
        if hasattr(self._model, 'pseudo_thresholds_in_force'):
            out.update(self._model.pseudo_thresholds_in_force())
        return out

    def _resolve_gt_path(self, runner) -> str:
        path = self.gt_ann_file
        if osp.isabs(path):
            return path
        leaves = list(iter_leaf_datasets(
            runner.cfg.train_dataloader['dataset']))
        # The unlabeled dataset's root first: the GT belongs to that split.
        leaves.sort(key=is_labeled)
        tried = []
        for ds in leaves:
            root = ds.get('data_root') or ''
            candidate = osp.join(root, path)
            tried.append(candidate)
            if osp.isfile(candidate):
                return candidate
        if osp.isfile(path):
            return path
        raise MMExtError(f'{path}: gt_ann_file not found (tried '
                         f'{", ".join(tried + [path])})')

    def _load_gt(self, runner) -> Optional[Dict[object, ImageGT]]:
        if not self.gt_ann_file:
            return None
        try:
            gt = load_gt_by_image(self._resolve_gt_path(runner),
                                  self.class_names)
        except MMExtError as exc:
            print_log(f'PseudoLabelStatsHook: no precision/recall: {exc}',
                      logger='current', level=30)
            return None
        return gt

    def _image_gt(self, sample) -> Optional[ImageGT]:
        if self._gt is None:
            return None
        meta = sample.metainfo
        gt = self._gt.get(osp.basename(meta.get('img_path', '') or ''))
        return gt if gt is not None else self._gt.get(('id', meta.get(
            'img_id')))

    # ------------------------------------------------------------ wrapping
    def _wrap(self, model) -> None:
        for name in WRAPPED:
            self._wrap_one(model, name, getattr(self, f'_around_{name}'))
        roi_head = getattr(model.teacher, 'roi_head', None)
        if roi_head is not None and hasattr(roi_head, 'predict'):
            self._wrap_one(roi_head, 'predict', self._around_teacher_predict)

    def _wrap_one(self, owner, name: str, around) -> None:
        def make(original):
            def wrapper(*args, **kwargs):
                return around(original, *args, **kwargs)
            return wrapper

        self.wrap_method(owner, name, make)

    def _recording(self) -> bool:
        return self.active

    def _guarded(self, fn, *args) -> None:
        """Run a recording step; an error stops recording (no raise here:
        it is reported at after_train_iter, on every rank at once)."""
        self.run_deferred('recording', fn, *args)

    def _around_get_pseudo_instances(self, original, batch_inputs,
                                     batch_data_samples, *args, **kwargs):
        self._raw, self._in_pseudo = [], True
        try:
            out = original(batch_inputs, batch_data_samples, *args, **kwargs)
        finally:
            self._in_pseudo = False
        samples = out[0] if isinstance(out, tuple) else out
        self._guarded(self._record_batch, samples, self._raw)
        self._raw = []
        return out

    def _around_teacher_predict(self, original, *args, **kwargs):
        results = original(*args, **kwargs)
        # Soft Teacher also calls predict for the box-jitter uncertainty,
        # with test_cfg set to None: only the first, real call is raw.
        if (self._in_pseudo and not self._raw and self._recording()
                and self._model.teacher.roi_head.test_cfg is not None):
            self._raw = [(r.bboxes, r.scores, r.labels) for r in results]
        return results

    def _around_project_pseudo_instances(self, original, pseudo, samples,
                                         *args, **kwargs):
        before = sum(len(s.gt_instances) for s in pseudo)
        out = original(pseudo, samples, *args, **kwargs)
        if self._recording():
            self._local['student_in'] += before
            self._local['student_kept'] += sum(len(s.gt_instances)
                                               for s in out)
        return out

    def _record_batch(self, samples, raw: List[tuple]) -> None:
        thresholds = self._thresholds_in_force()
        # The record states the thresholds its last images were counted with.
        self.thresholds = thresholds
        for i, sample in enumerate(samples):
            inst = sample.gt_instances
            kept = (_numpy(inst.bboxes), _numpy(inst.scores),
                    _numpy(inst.labels))
            uncs = _numpy(inst.reg_uncs) if 'reg_uncs' in inst else None
            if raw:
                bboxes, scores, labels = raw[i]
                inverse = torch.from_numpy(
                    np.linalg.inv(sample.homography_matrix)).to(bboxes)
                bboxes = bbox_project(bboxes, inverse, sample.ori_shape)
                raw_i = (_numpy(bboxes), _numpy(scores), _numpy(labels))
            else:
                raw_i = kept
            boxes = stage_boxes_of_image(raw_i, kept, uncs, self.stages,
                                         thresholds)
            tally_image(self._local, boxes, self._image_gt(sample),
                        self.iou_thr)

    # ------------------------------------------------------------- outputs
    def _out_paths(self, runner) -> List[str]:
        paths = []
        if dist.is_main_process():
            paths.append(osp.join(runner.work_dir, self.out_file))
        if self.rank_files:
            stem, ext = osp.splitext(self.out_file)
            paths.append(osp.join(runner.work_dir,
                                  f'{stem}_rank{dist.get_rank()}{ext}'))
        return paths

    def _publish(self, runner) -> None:
        iteration = runner.iter + 1
        record = tally_record(self._interval, self.class_names,
                              self.thresholds, iteration, self._first_iter)
        for key, value in hub_scalars(record,
                                      self.hub_per_class_stages).items():
            runner.message_hub.update_scalar(f'train/pseudo/{key}', value)
        paths = self._out_paths(runner)
        if dist.is_main_process():
            self._append(paths.pop(0), record)
        if self.rank_files:
            self._append(paths[-1], tally_record(
                self._rank_interval, self.class_names, self.thresholds,
                iteration, self._first_iter))
            self._rank_interval.reset()
        self._window.append(self._interval.to_vector())
        self._interval.reset()
        self._first_iter = iteration + 1

    def _append(self, path: str, record: dict) -> None:
        try:
            with open(path, 'a') as f:
                f.write(json.dumps(record) + '\n')
        except OSError as exc:
            if dist.get_world_size() == 1:
                raise
            # reported to all ranks at the next iteration
            self.defer_failure('writing ' + path, exc)


def hub_scalars(record: dict,
                per_class_stages: Sequence[str] = ('cls', )) -> Dict[str,
                                                                      float]:
    """The numbers of a record that go to the MessageHub (log line).

    Keys (``pseudo/`` is added by the caller's prefix): ``kept_ratio_<stage>``
    and ``per_img_<stage>`` for every stage, ``score_mean``/``score_median``
    of the raw teacher scores, and for ``per_class_stages``:
    ``kept_ratio_<stage>/<cls>``, ``imgs_without_<stage>``; with ground
    truth ``precision_<stage>``, ``recall_<stage>`` and their per-class
    values. Undefined ratios (no boxes) are left out.
    """
    out = {}
    for stage in record['stages']:
        if stage != 'raw':
            out[f'kept_ratio_{stage}'] = record['kept_ratio_total'][stage]
        out[f'per_img_{stage}'] = record['boxes_per_image'][stage]
        if 'precision' in record:
            out[f'precision_{stage}'] = record['precision'][stage]['all']
            out[f'recall_{stage}'] = record['recall'][stage]['all']
    out['score_mean'] = record['score']['raw']['all']['mean']
    out['score_median'] = record['score']['raw']['all']['median']
    for stage in per_class_stages:
        if stage not in record['stages']:
            continue
        out[f'imgs_without_{stage}'] = record['images_without'][stage]
        for name in record['classes']:
            out[f'kept_ratio_{stage}/{name}'] = record['kept_ratio'][stage][
                name]
            if 'precision' in record:
                out[f'precision_{stage}/{name}'] = record['precision'][stage][
                    name]
                out[f'recall_{stage}/{name}'] = record['recall'][stage][name]
    return {k: float(v) for k, v in out.items() if v is not None}
