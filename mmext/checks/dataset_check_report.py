"""tools/check_dataset.py's job: run every check, write the report files.

Annotations (:mod:`.dataset_check`), the pipelines on a sample
(:mod:`.pipeline_check`) and, given a predictions file, predictions sanity
(:mod:`.prediction_check`) become one list of :class:`CheckResult` rows,
written as ``checks.json`` / ``checks.csv`` with the plots beside them.
"""
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from mmengine.config import Config

from mmext.data import load_boxes_from_config
from mmext.utils import MMExtError
from mmext.viz.dataset_plots import (plot_class_distribution, plot_pipeline_samples,
                                 plot_prediction_sanity)
from mmext.checks.check_result import (CheckResult, make_check, status_counts,
                                       worst_status)
from mmext.checks.dataset_check import check_annotation_source, check_annotations
from mmext.checks.pipeline_check import check_pipelines
from mmext.checks.prediction_check import prediction_checks, prediction_stats, score_histogram
from mmext.evaluation.predictions import load_detections
from mmext.utils.tables import format_table, write_csv, write_json

COLUMNS = ('name', 'scope', 'status', 'count', 'total', 'detail')


@dataclass
class DatasetCheckReport:
    """Everything tools/check_dataset.py prints and writes.

    Attributes:
        results: Every check row.
        class_counts: ``{scope: {class: boxes}}`` of the labeled datasets.
        files: Paths written (JSON, CSV, PNGs).
        extra: Numbers for the JSON file (score histogram, ...).
    """
    results: List[CheckResult]
    class_counts: Dict[str, Dict[str, int]]
    files: List[str] = field(default_factory=list)
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when any check failed (the tool's exit code is 1)."""
        return worst_status(self.results) == 'fail'


def run_dataset_checks(cfg: Config,
                       out_dir: str,
                       num_samples: int = 100,
                       seed: int = 0,
                       num_drawn: int = 3,
                       predictions: Optional[str] = None,
                       score_thr: float = 0.3,
                       skip_pipeline: bool = False) -> DatasetCheckReport:
    """Run the annotation, pipeline and prediction checks of a config.

    Args:
        cfg: A loaded mmdet config (``--data-root`` already applied).
        out_dir: Folder for checks.json, checks.csv and the PNGs.
        num_samples: Images per dataset pushed through its pipeline.
        seed: Seed of the sample and the random transforms.
        num_drawn: Samples per dataset drawn in ``pipeline_samples.png``.
        predictions: Optional predictions file (``tools/test.py --out``).
        score_thr: Score threshold of the prediction checks.
        skip_pipeline: Only check annotations (and predictions).
    """
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    results, class_counts = check_annotations(cfg)
    report = DatasetCheckReport(results, class_counts)
    seconds = report.extra.setdefault('seconds', {})
    seconds['annotations'] = time.perf_counter() - start
    if class_counts:
        report.files.append(plot_class_distribution(
            class_counts, os.path.join(out_dir, 'class_distribution.png')))
    if not skip_pipeline:
        start = time.perf_counter()
        rows, drawn = check_pipelines(cfg, num_samples, seed, num_drawn)
        seconds['pipelines'] = time.perf_counter() - start
        report.results += rows
        if drawn:
            report.files.append(plot_pipeline_samples(
                drawn, os.path.join(out_dir, 'pipeline_samples.png')))
    if predictions:
        _add_prediction_checks(report, cfg, predictions, score_thr, out_dir)
    _write(report, out_dir)
    return report


def run_source_checks(source: str,
                      out_dir: str,
                      img_dir: Optional[str] = None,
                      predictions: Optional[str] = None,
                      score_thr: float = 0.3,
                      yolo_category_base: int = 1) -> DatasetCheckReport:
    """The annotation (and prediction) checks of an annotation file alone.

    Args:
        source: YOLO ``data.yaml`` (every split) or ``data.yaml:SPLIT``, or a
            COCO json / VOC folder with ``img_dir``.
        out_dir: Folder for checks.json, checks.csv and the PNGs.
        img_dir: Image folder of a COCO json or VOC folder.
        predictions: Optional predictions (mmdet ``.pkl`` or COCO results /
            Ultralytics ``predictions.json``), checked against the YOLO val
            split (or SPLIT), or the COCO/VOC source.
        score_thr: Score threshold of the prediction checks.
        yolo_category_base: ``category_id`` of YOLO class 0 in a
            ``predictions.json`` (1: ultralytics 8.4, 0: 8.0).
    """
    from mmext.evaluation.ground_truth import load_ground_truth
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    results, class_counts = check_annotation_source(source, img_dir)
    report = DatasetCheckReport(results, class_counts)
    report.extra['seconds'] = {'annotations': time.perf_counter() - start}
    if class_counts:
        report.files.append(plot_class_distribution(
            class_counts, os.path.join(out_dir, 'class_distribution.png')))
    if predictions:
        gt = load_ground_truth(source, split='val')
        dets = load_detections(predictions, gt, gt_json=source,
                               yolo_category_base=yolo_category_base)
        _add_prediction_rows(report, dets, gt, predictions, score_thr, out_dir)
    _write(report, out_dir)
    return report


def _add_prediction_checks(report: DatasetCheckReport, cfg: Config, path: str,
                           score_thr: float, out_dir: str) -> None:
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if not loader or 'dataset' not in loader:
        raise MMExtError(f'{cfg.filename}: --predictions needs a test_dataloader '
                         'with the ground truth')
    gt = load_boxes_from_config(cfg, dataset_cfg=loader['dataset'])
    _add_prediction_rows(report, load_detections(path, gt), gt, path,
                         score_thr, out_dir)


def _add_prediction_rows(report: DatasetCheckReport, dets, gt, path: str,
                         score_thr: float, out_dir: str) -> None:
    stats = prediction_stats(dets, gt, score_thr)
    report.results += prediction_checks(stats, score_thr)
    skipped = dets.skip_counts()
    report.results.append(make_check(
        'usable detections', path,
        [f'{n} skipped: {reason}' for reason, n in sorted(skipped.items())],
        len(dets) + sum(skipped.values()), severity='warn',
        detail=f'{len(dets)} used, {sum(skipped.values())} skipped'))
    report.extra['predictions'] = dict(
        file=path, score_thr=score_thr, score_histogram=score_histogram(stats.scores),
        spread_ratio=stats.spread_ratio, own_vs_other=stats.own_vs_other,
        densest_cell_pred=stats.densest_cell_pred,
        densest_cell_gt=stats.densest_cell_gt, recall_iou50=stats.recall_iou50)
    report.files.append(plot_prediction_sanity(
        stats.pred_centres, stats.gt_centres, stats.scores,
        (stats.preds_per_image, stats.gt_per_image), score_thr,
        os.path.join(out_dir, 'predictions.png')))


def _write(report: DatasetCheckReport, out_dir: str) -> None:
    rows = [r.to_dict() for r in report.results]
    json_path = os.path.join(out_dir, 'checks.json')
    csv_path = os.path.join(out_dir, 'checks.csv')
    report.files[:0] = [json_path, csv_path]
    write_json(dict(status=worst_status(report.results),
                    status_counts=status_counts(report.results), checks=rows,
                    class_counts=report.class_counts, files=report.files,
                    **report.extra), json_path)
    write_csv(rows, csv_path, COLUMNS)


def format_report(report: DatasetCheckReport, show_pass: bool = False,
                  max_examples: int = 3) -> str:
    """The summary table, then examples of every warn/fail row."""
    shown = [r for r in report.results if show_pass or r.status != 'pass']
    lines = [format_table([r.to_dict() for r in shown], COLUMNS)]
    if not show_pass:
        lines.append(f'(+ {len(report.results) - len(shown)} passed checks, '
                     'listed in checks.csv)')
    bad = [r for r in report.results if r.status in ('warn', 'fail') and r.examples]
    if bad:
        lines.append('\nexamples:')
    for r in bad:
        lines.append(f'[{r.status}] {r.name} ({r.scope}):')
        lines += [f'    {e}' for e in r.examples[:max_examples]]
    counts = status_counts(report.results)
    lines.append('\n' + ', '.join(f'{n} {s}' for s, n in counts.items())
                 + f' -> {worst_status(report.results).upper()}')
    seconds = report.extra.get('seconds', {})
    if seconds:
        lines.append('time: ' + ', '.join(f'{k} {v:.1f} s' for k, v in seconds.items()))
    return '\n'.join(lines)
