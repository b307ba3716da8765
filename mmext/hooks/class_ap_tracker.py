"""ClassAPTrackerHook: per-class AP after every validation, with warnings.

The user's plan (seed 004): validate every 2500 iterations, "plot
Severe_Rust and Chipped mAP separately", "stop if overall mAP drops > 5%",
"adjust if Severe_Rust/Chipped improve but others degrade". This hook keeps
the history and raises the warnings. Stopping and keeping the best
checkpoint are left to mmengine's ``EarlyStoppingHook`` and
``CheckpointHook(save_best=...)`` on the same metric key.
"""
import csv
import json
import os
from typing import Dict, List, Optional, Sequence

from mmdet.registry import HOOKS
from mmengine import dist
from mmengine.logging import print_log

from ..runs.files import CLASS_AP_HISTORY, CLASS_AP_HISTORY_CSV
from ..runs.validations import parse_class_metrics
from .safe_hook import SafeHook

WARNING = 30


def mAP_drop_warning(history: Sequence[dict], max_drop: float
                     ) -> Optional[str]:
    """Warn when the last mAP is more than ``max_drop`` below the best.

    Args:
        history: Records ``{'iter', 'mAP', 'classes'}`` of one model, in
            validation order.
        max_drop: Relative drop, 0.05 = 5% below the best.

    Returns:
        The warning text, or None.
    """
    scored = [h for h in history if h['mAP'] is not None]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda h: h['mAP'])
    last = scored[-1]
    if best['mAP'] > 0 and last['mAP'] < best['mAP'] * (1 - max_drop):
        drop = 1 - last['mAP'] / best['mAP']
        return (f"mAP {last['mAP']:.3f} is {drop:.1%} below its best "
                f"{best['mAP']:.3f} (iter {best['iter']}), more than "
                f'{max_drop:.0%}')
    return None


def trade_off_warning(prev: dict, last: dict, watch_classes: Sequence[str],
                      max_other_drop: float) -> Optional[str]:
    """Warn when every watched class improved while another class fell.

    Args:
        prev: The previous record ``{'iter', 'classes': {class: AP}}``.
        last: The latest record.
        watch_classes: The classes being worked on (e.g. Severe_Rust).
        max_other_drop: Tolerated fall of another class, in AP points
            (0.01 = one point of AP in [0, 1]).

    Returns:
        The warning text, or None.
    """
    def delta(name):
        a, b = prev['classes'].get(name), last['classes'].get(name)
        return None if a is None or b is None else b - a

    watched = [delta(c) for c in watch_classes]
    if not watched or any(d is None or d <= 0 for d in watched):
        return None
    fallen = {c: delta(c) for c in last['classes'] if c not in watch_classes}
    fallen = {c: d for c, d in fallen.items()
              if d is not None and d < -max_other_drop}
    if not fallen:
        return None
    gained = ', '.join(f'{c} +{d:.3f}' for c, d in zip(watch_classes,
                                                       watched))
    lost = ', '.join(f'{c} {d:.3f}' for c, d in sorted(fallen.items()))
    return (f"since iter {prev['iter']}: watched classes improved ({gained}) "
            f'while others fell by more than {max_other_drop:.3f} AP ({lost})')


@HOOKS.register_module()
class ClassAPTrackerHook(SafeHook):
    """Per-class AP history (CSV, JSON, PNG) and early warnings.

    After every validation (``after_val_epoch``) the per-class AP of every
    evaluated model (teacher and student under TeacherStudentValLoop) is
    appended to ``<work_dir>/class_ap_history.{json,csv}`` and the
    progression is drawn to ``<work_dir>/class_ap_progression.png``. For the
    ``monitor`` model it warns when the overall mAP is more than
    ``max_map_drop`` below its best, and when all ``watch_classes`` improved
    since the last validation while another class fell by more than
    ``max_other_drop``. The evaluation needs ``CocoMetric(classwise=True)``.

    To stop on the same condition and keep the best weights, compose with
    mmengine (nothing is re-implemented here)::

        default_hooks = dict(checkpoint=dict(
            type='CheckpointHook', save_best='teacher/coco/bbox_mAP',
            rule='greater'))
        custom_hooks = [
            dict(type='ClassAPTrackerHook',
                 watch_classes=['Severe_Rust', 'Chipped']),
            dict(type='EarlyStoppingHook', monitor='teacher/coco/bbox_mAP',
                 patience=3)]

    Args:
        watch_classes (list[str]): Classes being worked on. Defaults to [].
        max_map_drop (float): Relative mAP drop below the best that warns.
            Defaults to 0.05.
        max_other_drop (float): AP points another class may lose while the
            watched ones improve. Defaults to 0.01.
        monitor (str): Model whose metrics are judged: ``'teacher'``,
            ``'student'`` or ``''`` (plain val loop). Defaults to
            ``'teacher'``, falling back to the first model found.
        metric (str): CocoMetric metric name. Defaults to ``'bbox'``.
        plot (bool): Draw the PNG. Defaults to True.
    """

    priority = 'NORMAL'
    legacy_state_keys = ('mmext_class_ap_tracker', )

    def __init__(self, watch_classes: Sequence[str] = (),
                 max_map_drop: float = 0.05, max_other_drop: float = 0.01,
                 monitor: str = 'teacher', metric: str = 'bbox',
                 plot: bool = True) -> None:
        self.watch_classes = list(watch_classes)
        self.max_map_drop = max_map_drop
        self.max_other_drop = max_other_drop
        self.monitor = monitor
        self.metric = metric
        self.plot = plot
        self.history: List[dict] = []

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Record the validation, write the files, check the warnings."""
        parsed = parse_class_metrics(metrics or {}, self.metric)
        if not parsed:
            if not getattr(self, '_told_no_classwise', False):
                self._told_no_classwise = True
                print_log('ClassAPTrackerHook: no per-class AP in the '
                          'validation metrics (CocoMetric classwise=True?)',
                          logger='current', level=WARNING)
            return
        now = runner.iter
        self.history = [h for h in self.history if h['iter'] != now]
        for model, entry in sorted(parsed.items()):
            self.history.append(dict(iter=now, model=model, **entry))
        self._check(runner, parsed)
        if dist.is_main_process():
            self._write(runner.work_dir)

    def state_dict(self) -> dict:
        """The validation history."""
        return dict(history=list(self.history))

    def load_state_dict(self, state: dict, runner) -> None:
        """Restore the history, plus validations run right after the save.

        mmengine validates after the checkpoint of the same iteration is
        written, so that validation is only in the work_dir's JSON file;
        records up to the resumed iteration are taken from there. The files
        are rewritten from the result: what the first run wrote after the
        checkpoint is gone.
        """
        history = [h for h in state.get('history', [])
                   if h['iter'] <= runner.iter]
        on_disk = os.path.join(runner.work_dir, CLASS_AP_HISTORY)
        if os.path.isfile(on_disk):
            with open(on_disk) as f:
                known = {(h['iter'], h['model']) for h in history}
                history += [h for h in json.load(f).get('history', [])
                            if h['iter'] <= runner.iter
                            and (h['iter'], h['model']) not in known]
        self.history = sorted(history, key=lambda h: (h['iter'], h['model']))
        if self.history and dist.is_main_process():
            self._write(runner.work_dir)

    # helpers ----------------------------------------------------------------
    def _monitored(self, parsed: Dict[str, dict]) -> str:
        return self.monitor if self.monitor in parsed else sorted(parsed)[0]

    def _check(self, runner, parsed: Dict[str, dict]) -> None:
        model = self._monitored(parsed)
        mine = [h for h in self.history if h['model'] == model]
        messages = [mAP_drop_warning(mine, self.max_map_drop)]
        if len(mine) >= 2 and self.watch_classes:
            messages.append(trade_off_warning(mine[-2], mine[-1],
                                              self.watch_classes,
                                              self.max_other_drop))
        for message in filter(None, messages):
            print_log(f'ClassAPTrackerHook: iter {runner.iter}: '
                      f'{model or "model"} {message}', logger='current',
                      level=WARNING)

    def _write(self, work_dir: str) -> None:
        with open(os.path.join(work_dir, CLASS_AP_HISTORY), 'w') as f:
            json.dump(dict(watch_classes=self.watch_classes,
                           history=self.history), f, indent=1)
        write_history_csv(self.history,
                          os.path.join(work_dir, CLASS_AP_HISTORY_CSV))
        if self.plot:
            from mmext.viz.monitor_plots import plot_class_ap_progression
            fig = plot_class_ap_progression(self.history, self.watch_classes)
            fig.savefig(os.path.join(work_dir, 'class_ap_progression.png'),
                        dpi=90)
            import matplotlib.pyplot as plt
            plt.close(fig)


def write_history_csv(history: Sequence[dict], path: str) -> None:
    """One row per validation and model: iter, model, mAP, one column a class.

    Args:
        history: Records ``{'iter', 'model', 'mAP', 'classes'}``.
        path: Output CSV file.
    """
    from mmext.viz.monitor_plots import ordered_union
    classes = ordered_union(h['classes'] for h in history)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['iter', 'model', 'mAP'] + classes)
        for h in history:
            row = [h['classes'].get(c) for c in classes]
            writer.writerow([h['iter'], h['model'], h['mAP']] +
                            ['' if v is None else v for v in row])
