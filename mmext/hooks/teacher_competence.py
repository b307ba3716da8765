"""TeacherCompetenceHook: the teacher's precision and recall per class at
every score threshold, measured on the labeled validation set.

At every validation the hook keeps the teacher's predictions (under Soft
Teacher's ``TeacherStudentValLoop`` the pass with ``predict_on='teacher'``;
the model itself for a plain detector), gathers them from every process,
matches them to the validation ground truth with COCO matching at IoU 0.5
(:func:`mmext.evaluation.teacher_competence.competence_from_predictions`) and

- appends the record to ``<work_dir>/teacher_competence.jsonl``;
- puts per class ``val/competence/<class>/thr_at_target`` (the calibrated
  threshold, -1 where the target is not reached) and
  ``val/competence/<class>/best_precision_lb`` on the MessageHub;
- hands the record to a ``calibrated`` pseudo-threshold policy of the model
  (:class:`~mmext.models.PerClassSoftTeacher`), which sets its per-class
  thresholds from it; :class:`~mmext.hooks.PseudoThresholdHook` keeps them
  in the checkpoint.

Every rank gathers the same predictions (``all_gather_object``; images the
distributed sampler repeated to pad the last batch count once) and computes
the same record. On resume the JSON lines after the checkpoint are cut.

Resume: mmengine saves the checkpoint of iteration N *before* the validation
at N, so the thresholds that validation calibrated are not in it. On resume
the hook gives the model the last record at or before the resumed iteration
again (read by rank 0, broadcast to every rank) at the first training
iteration, after every hook restored its state: the resumed run trains with
the thresholds the uninterrupted one had.
"""
from typing import List, Optional

from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.logging import print_log

from ..runs.files import TEACHER_COMPETENCE
from ..runs.teacher_competence import (DEFAULT_CONFIDENCE,
                                       DEFAULT_PRECISION_TARGET,
                                       class_competence)
from .safe_hook import SafeHook


def _instances_to_numpy(sample) -> dict:
    pred = sample.pred_instances
    return {'img_id': sample.metainfo.get('img_id'),
            'img_path': sample.metainfo.get('img_path'),
            'pred_instances': {
                k: getattr(pred, k).detach().cpu().numpy()
                for k in ('bboxes', 'scores', 'labels')}}


def merge_rank_results(per_rank: List[list]) -> list:
    """Results of all ranks, each image once (first occurrence), in img_id
    order: the sampler pads the last batch with repeated images."""
    seen, merged = set(), []
    for results in per_rank:
        for res in results:
            if res['img_id'] in seen:
                continue
            seen.add(res['img_id'])
            merged.append(res)
    return sorted(merged, key=lambda r: r['img_id'])


@HOOKS.register_module()
class TeacherCompetenceHook(SafeHook):
    """Record the teacher's per-class precision/recall curves at validation.

    Args:
        iou_thr (float): IoU of a match. Defaults to 0.5.
        step (float): Grid step of the score thresholds. Defaults to 0.01.
        precision_target (float): Precision (as a lower confidence bound)
            that makes a threshold "competent" in the log and the scalars.
            A ``calibrated`` policy uses its own target. Defaults to 0.5.
        confidence (float): One-sided confidence of that bound (Wilson).
            Defaults to 0.9.
        out_file (str): JSON-lines file in the work_dir.
    """

    # before LoggerHook (BELOW_NORMAL): the scalars join this validation's
    # log line
    priority = 'NORMAL'

    def __init__(self, iou_thr: float = 0.5, step: float = 0.01,
                 precision_target: float = DEFAULT_PRECISION_TARGET,
                 confidence: float = DEFAULT_CONFIDENCE,
                 out_file: str = TEACHER_COMPETENCE) -> None:
        self.iou_thr = float(iou_thr)
        self.step = float(step)
        self.precision_target = float(precision_target)
        self.confidence = float(confidence)
        self.out_file = out_file
        self._results: list = []
        self._gt = None
        self._recalibrate = False

    def jsonl_files(self, runner) -> List[str]:
        """The record file, cut to the resumed iteration on resume."""
        import os.path as osp
        return [osp.join(runner.work_dir, self.out_file)]

    def before_train(self, runner) -> None:
        """Tell a per-class Soft Teacher its calibrated policy is fed."""
        model = self.model_of(runner)
        if hasattr(model, 'competence_hook_attached'):
            model.competence_hook_attached = True

    def state_dict(self) -> dict:
        """Marks the hook as resumable (the records are in the JSON lines)."""
        return {'out_file': self.out_file}

    def load_state_dict(self, state: dict, runner) -> None:
        """On resume: recalibrate at the first iteration (see the module
        docstring)."""
        self._recalibrate = True

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """After a resume, give the model its last calibration again."""
        if not self._recalibrate:
            return
        self._recalibrate = False
        record = self._last_record(runner) if dist.is_main_process() \
            else None
        if dist.get_world_size() > 1:
            box = [record]
            dist.broadcast_object_list(box, src=0)
            record = box[0]
        model = self.model_of(runner)
        if record is not None and hasattr(model,
                                          'calibrate_pseudo_thresholds'):
            model.calibrate_pseudo_thresholds(record, record['iter'])

    def _last_record(self, runner) -> Optional[dict]:
        """The last record at or before the resumed iteration, or None."""
        import os.path as osp

        from ..runs.scalars import read_jsonl_lenient
        path = osp.join(runner.work_dir, self.out_file)
        records = [r for r in read_jsonl_lenient(path)
                   if isinstance(r.get('iter'), int)
                   and r['iter'] <= runner.iter] if osp.isfile(path) else []
        return records[-1] if records else None

    def _predicting_model(self, runner) -> Optional[str]:
        cfg = getattr(self.model_of(runner), 'semi_test_cfg', None)
        if not isinstance(cfg, dict) and not hasattr(cfg, 'get'):
            return 'model'
        return cfg.get('predict_on', 'teacher')

    def before_val_epoch(self, runner) -> None:
        """Start collecting this validation's predictions."""
        self._results = []

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        """Keep the teacher's predictions of this batch (numpy, CPU)."""
        if self._predicting_model(runner) in ('teacher', 'model'):
            self._results.extend(_instances_to_numpy(s) for s in outputs or [])

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Gather, match, write, publish, calibrate."""
        mine, self._results = self._results, []
        per_rank = (dist.all_gather_object(mine)
                    if dist.get_world_size() > 1 else [mine])
        results = merge_rank_results(per_rank)
        if not results:
            return
        record = self._record(runner, results)
        rows = class_competence(record, self.precision_target,
                                self.confidence)
        self._publish(runner, rows)
        if dist.is_main_process():
            self._write(runner, record)
        model = self.model_of(runner)
        if hasattr(model, 'calibrate_pseudo_thresholds'):
            changed = model.calibrate_pseudo_thresholds(record,
                                                        runner.iter)
            if changed:
                print_log('TeacherCompetenceHook: calibrated pseudo '
                          'thresholds ' + ', '.join(
                              f'{stage} {[round(v, 3) for v in values]}'
                              for stage, values in changed.items()),
                          logger='current', level=20)

    def _record(self, runner, results: list) -> dict:
        from ..evaluation.predictions import detections_from_results
        from ..evaluation.teacher_competence import competence_from_predictions
        if self._gt is None:
            from ..data import load_boxes_from_config
            self._gt = load_boxes_from_config(
                runner.cfg, dataset_cfg=runner.cfg.val_dataloader.dataset)
        dets = detections_from_results(results, self._gt,
                                       'validation predictions')
        model = 'teacher' if hasattr(self.model_of(runner),
                                     'teacher') else 'model'
        return competence_from_predictions(
            self._gt, dets, runner.iter, model, self.iou_thr, self.step)

    def _publish(self, runner, rows: List[dict]) -> None:
        hub = runner.message_hub
        for row in rows:
            thr = row['thr_at_target']
            hub.update_scalar(f'val/competence/{row["class"]}/thr_at_target',
                              -1.0 if thr is None else float(thr))
            hub.update_scalar(
                f'val/competence/{row["class"]}/best_precision_lb',
                float(row['best_lower_bound']))

    def _write(self, runner, record: dict) -> None:
        import json
        import os.path as osp
        with open(osp.join(runner.work_dir, self.out_file), 'a') as f:
            f.write(json.dumps(record) + '\n')
