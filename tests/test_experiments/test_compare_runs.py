"""tools/compare_runs.py on constructed runs whose answer is known."""
import json
import os

import numpy as np
import pytest
from mmengine.config import Config

from analysis_fixtures import load_tool
from helpers import DEMO_CONFIG
from mmext.experiments.compare_runs import (check_expectations,
                                         parse_expectation, run_metrics,
                                         seed_statistics)
from mmext.utils import MMExtError, run_cli

CLASSES = ['Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear', 'Scratched']


def make_run(path, ap, kept_cls=0.2, classes=CLASSES, iters=(200, 400)):
    """A work_dir as training leaves it: the dumped config, scalars.json
    with validations (teacher AP per class ``ap`` at the last one, half of
    it before) and pseudo-label records with cls kept ratio ``kept_cls``."""
    os.makedirs(os.path.join(path, '20260101_000000', 'vis_data'))
    cfg = Config.fromfile(DEMO_CONFIG)
    if list(classes) != CLASSES:
        for ds in cfg.train_dataloader.dataset.datasets:
            ds.metainfo = dict(classes=tuple(classes))
    cfg.dump(os.path.join(path, 'config.py'))
    lines = [json.dumps({'loss': 1.0 + 0.01 * k, 'step': k}) for k in range(50)]
    for j, it in enumerate(iters):
        scale = (j + 1) / len(iters)
        rec = {'step': it, 'teacher/coco/bbox_mAP': float(np.mean(ap)) * scale,
               'teacher/coco/bbox_mAP_50': 2 * float(np.mean(ap)) * scale}
        for name, v in zip(classes, ap):
            rec[f'teacher/coco/{name}_precision'] = v * scale
            rec[f'student/coco/{name}_precision'] = v * scale / 2
        lines.append(json.dumps(rec))
    with open(os.path.join(path, '20260101_000000', 'vis_data',
                           'scalars.json'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    raw = {n: 100 for n in classes}
    rec = {'iter': 400, 'first_iter': 361, 'classes': list(classes),
           'stages': ['raw', 'initial', 'cls'],
           'counts': {'raw': raw, 'initial': {n: 50 for n in classes},
                      'cls': {n: int(100 * kept_cls) for n in classes}},
           'tp': {s: {n: 10 for n in classes} for s in ('raw', 'initial',
                                                         'cls')},
           'fp': {s: {n: 10 for n in classes} for s in ('raw', 'initial',
                                                         'cls')}}
    with open(os.path.join(path, 'pseudo_label_stats.jsonl'), 'w') as f:
        f.write(json.dumps(rec) + '\n')
    return path


AP_CONTROL = [0.10, 0.05, 0.08, 0.50, 0.12]


def test_run_metrics_read_back(tmp_path):
    m = run_metrics(make_run(str(tmp_path / 'r'), AP_CONTROL), CLASSES)
    assert m['final_teacher_ap/Chipped'] == pytest.approx(0.05)
    assert m['best_teacher_ap/Chipped'] == pytest.approx(0.05)
    assert m['final_student_ap/Chipped'] == pytest.approx(0.025)
    assert m['kept_ratio_cls/all'] == pytest.approx(0.2)
    assert m['precision_cls/Broken'] == pytest.approx(0.5)
    assert [h['iter'] for h in m['history']] == [200, 400]


def test_seed_statistics_paired_t_interval():
    control = [{'x': v} for v in (0.10, 0.20, 0.30)]
    arm = [{'x': v} for v in (0.15, 0.24, 0.37)]
    st = seed_statistics(control, arm, 'x')
    diffs = np.array([0.05, 0.04, 0.07])
    from scipy import stats
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert st['delta'] == pytest.approx(diffs.mean())
    assert st['delta_ci'] == pytest.approx([diffs.mean() - half,
                                            diffs.mean() + half])
    assert st['mean'] == pytest.approx(np.mean([0.15, 0.24, 0.37]))


def test_identical_arms_contain_zero_and_planted_shift_is_found(tmp_path):
    runs = {'stock': [], 'same': [], 'fix': []}
    rng = np.random.default_rng(0)
    for s in range(3):
        noise = rng.normal(0, 0.01, 5)
        base = list(np.array(AP_CONTROL) + noise)
        runs['stock'].append(run_metrics(make_run(
            str(tmp_path / f'stock{s}'), base), CLASSES))
        runs['same'].append(run_metrics(make_run(
            str(tmp_path / f'same{s}'), base), CLASSES))
        shifted = list(base)
        shifted[1] += 0.05 + rng.normal(0, 0.005)  # Chipped up by ~0.05
        runs['fix'].append(run_metrics(make_run(
            str(tmp_path / f'fix{s}'), shifted, kept_cls=0.4), CLASSES))
    same = seed_statistics(runs['stock'], runs['same'],
                           'final_teacher_ap/Chipped')
    assert same['delta_ci'][0] <= 0 <= same['delta_ci'][1]
    fix = seed_statistics(runs['stock'], runs['fix'],
                          'final_teacher_ap/Chipped')
    assert fix['delta_ci'][0] > 0
    other = seed_statistics(runs['stock'], runs['fix'],
                            'final_teacher_ap/Broken')
    assert other['delta'] == pytest.approx(0)
    exps = [parse_expectation(e) for e in (
        'Chipped:ap>=0.08', 'Severe_Rust:ap>=0.3', 'kept_ratio_cls:up',
        'Broken:ap:up')]
    rows = {(r['criterion'], r['arm']): r
            for r in check_expectations(exps, runs)}
    assert rows[('Chipped:ap>=0.08', 'fix')]['result'] == 'PASS'
    assert rows[('Chipped:ap>=0.08', 'same')]['result'] == 'FAIL'
    assert rows[('Severe_Rust:ap>=0.3', 'fix')]['result'] == 'FAIL'
    assert rows[('kept_ratio_cls:up', 'fix')]['result'] == 'PASS'
    assert rows[('Broken:ap:up', 'fix')]['result'] == 'FAIL'


@pytest.mark.parametrize('text', ['Chipped:ap=>0.1', 'foo:bar', 'ap',
                                  'Chipped:recall>0.1'])
def test_bad_expectations(text):
    with pytest.raises(MMExtError, match='--expect'):
        parse_expectation(text)


def test_cli_tables_files_and_errors(tmp_path, capsys):
    tool = load_tool('compare_runs')
    a = make_run(str(tmp_path / 'a'), AP_CONTROL)
    b = make_run(str(tmp_path / 'b'), [v + 0.02 for v in AP_CONTROL],
                 kept_cls=0.3)
    out = tmp_path / 'out'
    assert tool.main([f'stock={a}', f'new={b}', '--out-dir', str(out),
                      '--expect', 'Chipped:ap>=0.06', 'kept_ratio_cls:up']) == 0
    text = capsys.readouterr().out
    assert 'PASS' in text and 'Chipped' in text
    data = json.loads((out / 'compare.json').read_text())
    row = next(r for r in data['rows'] if r['arm'] == 'new'
               and r['metric'] == 'final_teacher_ap' and r['class'] == 'Chipped')
    assert row['delta'] == pytest.approx(0.02)
    for name in ('compare.csv', 'class_ap.png', 'ap_progression.png',
                 'expectations.csv'):
        assert (out / name).is_file()
    # a run without validations, another class list, a missing work_dir
    empty = tmp_path / 'empty'
    make_run(str(empty), AP_CONTROL, iters=())
    other = make_run(str(tmp_path / 'other'), AP_CONTROL[:4],
                     classes=CLASSES[:4])
    for argv, match in (([f'stock={a}', f'x={empty}'], 'no validation'),
                        ([f'stock={a}', f'x={other}'], 'differ from'),
                        ([f'stock={a}', f'x={tmp_path}/nope'], 'no such'),
                        ([f'stock={a}', 'x'], 'NAME=WORK_DIR'),
                        ([f'stock={a}', '--predictions', f'stock=p.pkl'],
                         'needs --gt')):
        with pytest.raises(SystemExit) as info:
            run_cli(tool.main, argv + ['--out-dir', str(out)])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, err


def test_cli_bootstrap_on_real_predictions(demo_eval_run, tmp_path, capsys):
    """The same predictions as control and arm: every delta and interval is
    0; predictions of another validation set are refused."""
    tool = load_tool('compare_runs')
    wd, pkl = demo_eval_run['work_dir'], demo_eval_run['predictions']
    gt = os.path.join(demo_eval_run['data_root'], 'annotations', 'val.json')
    out = tmp_path / 'out'
    assert tool.main([f'a={wd}', f'b={wd}', '--predictions', f'a={pkl}',
                      f'b={pkl}', '--gt', gt, '--resamples', '50',
                      '--out-dir', str(out)]) == 0
    data = json.loads((out / 'compare.json').read_text())
    rows = data['bootstrap']['b']['ap']
    assert [r['class'] for r in rows] == CLASSES
    for r in rows:
        assert r['delta'] in (0, None) and r['ci_low'] in (0, None)
    other_gt = os.path.join(demo_eval_run['data_root'], 'annotations',
                            'train_labeled.json')
    with pytest.raises(SystemExit) as info:
        run_cli(tool.main, [f'a={wd}', f'b={wd}', '--predictions',
                            f'a={pkl}', f'b={pkl}', '--gt', other_gt,
                            '--out-dir', str(out)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'predictions of another dataset' in err
    assert pkl in err and 'train_labeled.json' in err


def test_cli_malformed_and_wrong_typed_records(tmp_path, capsys):
    tool = load_tool('compare_runs')
    run = make_run(str(tmp_path / 'r'), AP_CONTROL)
    path = os.path.join(run, 'pseudo_label_stats.jsonl')
    for text, match in (('{"stages": ["raw", "cls"], "counts": 5}\n',
                         'not a pseudo-label record'),
                        ('garbage{\n', 'not JSON')):
        with open(path, 'w') as f:
            f.write(text)
        with pytest.raises(SystemExit) as info:
            run_cli(tool.main, [f'a={run}', f'b={run}', '--out-dir',
                                str(tmp_path / 'o')])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err and path in err
