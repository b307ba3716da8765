"""tools/investigate.py on real runs, on runs with only some inputs, and on
bad input."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

from analysis_fixtures import load_tool
from helpers import ROOT, tiny_semi_config
from mmext.checks.config_check import check_config, has_errors
from mmext.evaluation.error_breakdown import error_breakdown
from mmext.evaluation.ground_truth import load_ground_truth
from mmext.evaluation.predictions import load_detections
from mmext.utils import read_jsonl

investigate_tool = load_tool('investigate')


@pytest.fixture(scope='module')
def monitored_run(tiny_demo_root, demo_eval_run, tmp_path_factory):
    """4 real Soft Teacher iterations, every monitor writing each iteration,
    a validation at 4, and the predictions of demo_eval_run's test pass."""
    from mmext.engine import build_runner
    work = str(tmp_path_factory.mktemp('investigated'))
    cfg = tiny_semi_config(tiny_demo_root, work, max_iters=4, val_interval=4)
    for hook in cfg.custom_hooks:
        if hook['type'] in ('PseudoLabelStatsHook', 'AnchorMatchStatsHook'):
            hook['interval'] = 1
        if hook['type'] == 'LossStabilityHook':
            hook.update(window=2, warmup_iters=0)
    cfg.log_level = 'INFO'
    build_runner(cfg).train()
    os.makedirs(osp.join(work, 'eval'))
    shutil.copy(demo_eval_run['predictions'], osp.join(work, 'eval'))
    return work


def _run(argv):
    code = investigate_tool.main(argv)
    assert code == 0
    out = argv[argv.index('--out-dir') + 1]
    with open(osp.join(out, 'findings.json')) as f:
        return json.load(f), open(osp.join(out, 'report.md')).read()


def test_real_run_findings_equal_independent_computations(
        monitored_run, tiny_demo_root, tmp_path):
    content, report = _run([monitored_run, '--data-root', tiny_demo_root,
                            '--out-dir', str(tmp_path), '--no-anchor-search'])
    assert content['skipped'] == []
    # the pictures beside the findings are files of the gallery
    assert (tmp_path / 'gallery' / 'index.html').is_file()
    import re
    links = re.findall(r'\]\((gallery/[^)]+\.png)\)', report)
    assert all((tmp_path / link).is_file() for link in links)
    # pseudo_starved: recomputed from the hook's file
    recs = read_jsonl(osp.join(monitored_run, 'pseudo_label_stats.jsonl'))
    window = recs[-5:]
    names = window[-1]['classes']
    raw = {n: sum(r['counts']['raw'][n] for r in window) for n in names}
    starved = {stage: [n for n in names if raw[n] > 0 and
                       sum(r['counts'][stage][n] for r in window) == 0]
               for stage in ('rpn', 'cls')}
    # gated by competence: one finding per stage set and competence group
    found = [f for f in content['findings']
             if f['rule'] in ('pseudo_starved', 'teacher_cannot_detect')
             and 'stages' in f['numbers']]
    got = {}
    for f in found:
        for stage in f['numbers']['stages']:
            got.setdefault(stage, []).extend(f['classes'])
    assert {s: sorted(c) for s, c in got.items()} == {
        s: sorted(c) for s, c in starved.items() if c}
    # the error breakdown: the same numbers as the module run directly
    cfg_path = next(p for p in os.listdir(monitored_run) if p.endswith('.py'))
    gt = load_ground_truth(config=osp.join(monitored_run, cfg_path),
                           data_root=tiny_demo_root)
    dets = load_detections(osp.join(monitored_run, 'eval', 'predictions.pkl'),
                           gt)
    rows = [r for r in error_breakdown(gt, dets).rows() if r['class'] != 'all']
    for f in content['findings']:
        if f['rule'] == 'dominant_error':
            kind = f['numbers']['type']
            for name, dap in f['numbers']['dap50'].items():
                row = next(r for r in rows if r['class'] == name)
                costs = {t: row[f'dap_{t}'] for t in
                         ('classification', 'localization', 'both',
                          'duplicate', 'background', 'missed')}
                assert max(costs, key=costs.get) == kind
                assert dap == pytest.approx(costs[kind])
    # ranks are 1..n, strengths never increase
    order = ['certain', 'strong', 'moderate', 'weak']
    ranks = [order.index(f['strength']) for f in content['findings']]
    assert ranks == sorted(ranks)
    # report order: findings before the actions, actions before monitoring
    heads = [line for line in report.splitlines() if line.startswith('## ')]
    assert heads[:5] == ['## The problem in numbers', '## Findings, ranked',
                         '## Likely root causes',
                         '## Recommended actions, one change at a time',
                         '## What to monitor next']
    # every written action config loads and passes check_config
    for action in content['actions']:
        if action['config']:
            Config.fromfile(action['config'])
            assert not has_errors(check_config(action['config']))


def test_no_threshold_lowered_below_the_precision_target(
        monitored_run, tiny_demo_root, demo_eval_run, tmp_path):
    """Issue 23's rule: a class whose teacher validation precision stays
    below the target is never given a calibrated (lower) threshold."""
    from mmext.evaluation.teacher_competence import competence_from_predictions
    from mmext.runs.teacher_competence import class_competence
    content, report = _run([monitored_run, '--data-root', tiny_demo_root,
                            '--out-dir', str(tmp_path), '--no-anchor-search',
                            '--precision-target', '0.6'])
    cfg_path = next(p for p in os.listdir(monitored_run) if p.endswith('.py'))
    gt = load_ground_truth(config=osp.join(monitored_run, cfg_path),
                           data_root=tiny_demo_root)
    dets = load_detections(osp.join(monitored_run, 'eval', 'predictions.pkl'),
                           gt)
    competent = {r['class'] for r in class_competence(
        competence_from_predictions(gt, dets), 0.6) if r['competent']}
    for f in content['findings']:
        if f['action'] == 'calibrated_thresholds':
            assert set(f['classes']) <= competent
        if f['rule'] == 'teacher_cannot_detect':
            assert not set(f['classes']) & competent
    assert 'per_class_thresholds' not in {a['key'] for a in content['actions']}
    calibrated = next((a for a in content['actions']
                       if a['key'] == 'calibrated_thresholds'), None)
    if calibrated is not None:  # its floor is the run's initial threshold
        semi = Config.fromfile(calibrated['config']).model.semi_train_cfg
        assert semi.cls_pseudo_thr.floor == semi.pseudo_label_initial_score_thr
    for action in content['actions']:
        assert action['measured'] or 'not measured' in report
    if any(a['config'] for a in content['actions']):
        control = osp.join(str(tmp_path), 'actions', '00_control.py')
        assert osp.isfile(control)
        assert '## How to test an action on your run' in report
        assert 'randomness.seed=$seed' in report and '--predictions' in report


def test_run_with_only_a_config_says_what_it_skipped(monitored_run, tmp_path):
    work = tmp_path / 'bare'
    work.mkdir()
    cfg = next(p for p in os.listdir(monitored_run) if p.endswith('.py'))
    shutil.copy(osp.join(monitored_run, cfg), work)
    content, report = _run([str(work), '--out-dir', str(tmp_path / 'out')])
    skipped = {s['analysis'] for s in content['skipped']}
    assert {'validation', 'pseudo labels', 'anchor matching',
            'loss stability', 'error breakdown, threshold sweep'} <= skipped
    assert '## Skipped' in report and 'no predictions' in report


def test_plain_faster_rcnn_run(monitored_run, tiny_demo_root, tmp_path):
    """No teacher, no pseudo labels: plain coco/ metric keys."""
    semi = Config.fromfile(osp.join(ROOT, 'configs/soft_teacher/'
                                    'soft-teacher_faster-rcnn_tiny_demo.py'))
    plain = dict(model=semi.model.detector.to_dict(),
                 metainfo=semi.metainfo.to_dict(),
                 train_dataloader=dict(dataset=semi.train_dataloader.dataset
                                       .datasets[0].to_dict()),
                 val_dataloader=semi.val_dataloader.to_dict(),
                 optim_wrapper=semi.optim_wrapper.to_dict(),
                 train_cfg=dict(type='IterBasedTrainLoop', max_iters=100))
    plain['model']['data_preprocessor'] = semi.model.data_preprocessor.to_dict()
    work = tmp_path / 'plain'
    (work / '20260101_000000' / 'vis_data').mkdir(parents=True)
    Config(plain).dump(str(work / 'faster-rcnn.py'))
    names = list(semi.metainfo['classes'])
    lines = [dict(loss=2.0 - 0.01 * i, step=i) for i in range(1, 100, 10)]
    lines.append(dict(**{'coco/bbox_mAP': 0.2, 'coco/bbox_mAP_50': 0.4},
                      **{f'coco/{n}_precision': 0.1 * (k + 1)
                         for k, n in enumerate(names)}, step=100))
    with open(work / '20260101_000000' / 'vis_data' / 'scalars.json',
              'w') as f:
        f.write('\n'.join(json.dumps(x) for x in lines) + '\n')
    content, report = _run([str(work), '--data-root', tiny_demo_root,
                            '--out-dir', str(tmp_path / 'out'),
                            '--no-anchor-search'])
    assert 'model mAP 0.200' in content['problem']['summary']
    aps = {r['class']: r['ap'] for r in content['problem']['rows']}
    assert aps == {n: pytest.approx(0.1 * (k + 1))
                   for k, n in enumerate(names)}
    assert 'pseudo labels' in {s['analysis'] for s in content['skipped']}


def test_bad_input_is_one_line(monitored_run, tmp_path):
    missing = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'investigate.py'),
         str(tmp_path / 'nowhere')], capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip().count('\n') == 0
    assert 'nowhere: not a folder' in missing.stderr
    broken = tmp_path / 'broken'
    shutil.copytree(monitored_run, broken, ignore=shutil.ignore_patterns(
        '*.pth', 'eval'))
    with open(broken / 'pseudo_label_stats.jsonl', 'wb') as f:
        f.write(b'\x00\xff garbage\n{"iter": 3}\n')
    (broken / 'anchor_match_stats.jsonl').write_text('[1, 2]\n"x"\n')
    content, _ = _run([str(broken), '--out-dir', str(tmp_path / 'out'),
                       '--no-anchor-search'])
    reasons = {s['analysis']: s['reason'] for s in content['skipped']}
    assert 'pseudo_label_stats.jsonl' in reasons['pseudo labels']
    assert 'anchor_match_stats.jsonl' in reasons['anchor matching']
    with pytest.raises(SystemExit):
        investigate_tool.parse_args([str(broken), '--deploy-thr', 'x'])


def test_predictions_and_ground_truth_alone(demo_eval_run, tiny_demo_root,
                                            tmp_path):
    """No work_dir files: the classes come from the ground truth, the
    problem from the predictions, and the gallery from --img-dir."""
    empty = tmp_path / 'empty'
    empty.mkdir()
    gt = osp.join(tiny_demo_root, 'annotations', 'val.json')
    content, report = _run([
        str(empty), '--predictions', demo_eval_run['predictions'], '--gt', gt,
        '--img-dir', osp.join(tiny_demo_root, 'images', 'val'),
        '--out-dir', str(tmp_path / 'out'), '--no-anchor-search'])
    with open(gt) as f:
        names = [c['name'] for c in json.load(f)['categories']]
    assert [r['class'] for r in content['problem']['rows']] and all(
        r['class'] in names for r in content['problem']['rows'])
    assert 'from the predictions: mAP50' in report
    assert (tmp_path / 'out' / 'gallery' / 'index.html').is_file()
    assert not any(s['analysis'] == 'error gallery'
                   for s in content['skipped'])
