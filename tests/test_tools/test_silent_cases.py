"""Issue 24's silent cases: each is now a one-line error naming the file,
or a counted skip. One test per case, through the tools' own ``run_cli``.
"""
import json
import os
import time

import numpy as np
import pytest

from helpers import ROOT
from test_fuzz_inputs import assert_clean_outcome, run_tool

DEMO_CONFIG = os.path.join(ROOT, 'configs', 'soft_teacher',
                           'soft-teacher_faster-rcnn_tiny_demo.py')


def _config(tmp_path, text: str, name: str = 'cfg.py') -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_check_dataset_refuses_an_empty_config(tmp_path):
    config = _config(tmp_path, '\n', 'empty.py')
    out_dir = tmp_path / 'out'
    code, _, err = run_tool('check_dataset', [config, '--out-dir',
                                              str(out_dir)])
    assert code == 2 and 'no dataset' in err
    assert_clean_outcome(code, err, config)
    assert not out_dir.exists()  # no empty folder left behind


@pytest.mark.parametrize('field,value', [('ratios', [0.0, 1.0, 2.0]),
                                         ('ratios', [-1.0, 1.0]),
                                         ('scales', [0]),
                                         ('ratios', [])])
def test_anchor_fit_refuses_what_check_config_rejects(tiny_demo_root,
                                                      tmp_path, field, value):
    config = _config(tmp_path, f"_base_ = {DEMO_CONFIG!r}\nmodel = dict("
                     f"detector=dict(rpn_head=dict(anchor_generator=dict("
                     f"{field}={value!r}))))\n", 'bad_anchors.py')
    code, _, err = run_tool('anchor_fit', [config, '--data-root',
                                           tiny_demo_root, '--out-dir',
                                           str(tmp_path / 'fit')])
    assert code == 2, err
    assert_clean_outcome(code, err, config)
    assert f'anchor_generator.{field}' in err
    # the same rule fires in check_config
    code, out, _ = run_tool('check_config', [config])
    assert code == 1 and 'anchors' in out


def _diff_risks(tmp_path, a: str, b: str) -> list:
    code, out, err = run_tool('config_diff', [
        _config(tmp_path, a, 'a.py'), _config(tmp_path, b, 'b.py'),
        '--json'])
    assert code == 0, err
    return [r['rule'] for r in json.loads(out)['risks']]


@pytest.mark.parametrize('a,b', [('lr0 = 0.01\n', 'lr0 = 0.0\n'),
                                 ('lr0 = 0.0\n', 'lr0 = 0.01\n'),
                                 ('lr0 = 0.01\nbatch = 0\n',
                                  'lr0 = 0.1\nbatch = 16\n')])
def test_config_diff_lr_zero_still_fires_the_jump(tmp_path, a, b):
    assert 'learning rate jump' in _diff_risks(tmp_path, a, b)


def test_config_diff_unset_gamma_to_zero_is_not_focal_on(tmp_path):
    assert _diff_risks(tmp_path, 'fl_gamma = None\n',
                       'fl_gamma = 0.0\n') == []
    assert _diff_risks(tmp_path, 'fl_gamma = 1.5\n',
                       'fl_gamma = 0.0\n') == ['focal']


@pytest.mark.parametrize('value', [True, 'abc'])
def test_class_efficiency_ap_that_is_not_a_number(demo_eval_run, tmp_path,
                                                  value):
    with open(demo_eval_run['metrics']) as f:
        metrics = json.load(f)
    key = next(k for k in metrics if k.endswith('_precision'))
    metrics[key] = value
    path = tmp_path / 'metrics_bad.json'
    path.write_text(json.dumps(metrics))
    ann = os.path.join(demo_eval_run['data_root'], 'annotations',
                       'train_labeled.json')
    code, _, err = run_tool('class_efficiency', ['--metrics', str(path),
                                                 '--ann', ann])
    assert code == 2 and '--thresholds' not in err
    assert_clean_outcome(code, err, str(path))


def test_class_efficiency_percent_ap_names_the_file(demo_eval_run, tmp_path):
    with open(demo_eval_run['metrics']) as f:
        metrics = json.load(f)
    key = next(k for k in metrics if k.endswith('_precision'))
    metrics[key] = 55.9
    path = tmp_path / 'metrics_percent.json'
    path.write_text(json.dumps(metrics))
    ann = os.path.join(demo_eval_run['data_root'], 'annotations',
                       'train_labeled.json')
    code, _, err = run_tool('class_efficiency', ['--metrics', str(path),
                                                 '--ann', ann])
    assert code == 2 and '--thresholds' not in err and 'percent' in err
    assert_clean_outcome(code, err, str(path))


def test_class_counts_refuses_a_negative_background_weight(tiny_demo_root):
    ann = os.path.join(tiny_demo_root, 'annotations', 'train_labeled.json')
    code, _, err = run_tool('class_counts', [ann, '--background-weight',
                                             '-3'])
    assert code == 2 and 'background weight' in err


def test_demo_summary_prints_no_nan_and_refuses_true(demo_eval_run,
                                                     tmp_path):
    work = tmp_path / 'run'
    (work / 'eval').mkdir(parents=True)
    with open(demo_eval_run['metrics']) as f:
        metrics = json.load(f)
    keys = [k for k in metrics if k.endswith('_precision')]
    metrics[keys[0]] = float('nan')
    (work / 'eval' / 'metrics.json').write_text(json.dumps(metrics))
    code, out, err = run_tool('demo_summary', [str(work)])
    assert code == 0, err
    assert 'nan' not in out.lower() and 'no box in the validation set' in out
    metrics[keys[0]] = True
    (work / 'eval' / 'metrics.json').write_text(json.dumps(metrics))
    code, out, err = run_tool('demo_summary', [str(work)])
    assert code == 2 and 'not a number' in err


def test_report_says_why_the_loss_section_is_missing(demo_eval_run,
                                                     tmp_path):
    import shutil
    work = tmp_path / 'run'
    shutil.copytree(demo_eval_run['work_dir'], work)
    scalars = [os.path.join(d, f) for d, _, fs in os.walk(work) for f in fs
               if f == 'scalars.json']
    assert scalars
    for path in scalars:
        with open(path, 'w') as f:
            f.write('garbage{\n')
    code, out, err = run_tool('report', [str(work)])
    assert code == 0, err
    assert 'No loss curve' in out and 'unreadable' in out
    html = (work / 'report' / 'report.html').read_text()
    assert 'No loss curve' in html


def test_report_reads_findings_written_elsewhere(demo_eval_run, tmp_path):
    investigation = tmp_path / 'inv'
    code, _, err = run_tool('investigate', [demo_eval_run['work_dir'],
                                            '--out-dir', str(investigation)])
    assert code == 0, err
    code, out, err = run_tool('report', [
        demo_eval_run['work_dir'], '--investigation', str(investigation),
        '--out-dir', str(tmp_path / 'report')])
    assert code == 0, err
    html = (tmp_path / 'report' / 'report.html').read_text()
    assert '<h2>Findings</h2>' in html and 'No investigation yet' not in html
    code, _, err = run_tool('report', [demo_eval_run['work_dir'],
                                       '--investigation', str(tmp_path / 'x')])
    assert code == 2 and 'findings.json' in err


def test_failed_tool_leaves_no_empty_output_folder(tmp_path):
    out_dir = tmp_path / 'a' / 'b'
    code, _, err = run_tool('threshold_sweep', [
        str(tmp_path / 'missing.pkl'), '--gt', str(tmp_path / 'gt.json'),
        '--out-dir', str(out_dir)])
    assert code == 2
    assert not (tmp_path / 'a').exists()
    kept = tmp_path / 'kept'
    kept.mkdir()
    run_tool('threshold_sweep', [str(tmp_path / 'missing.pkl'), '--gt',
                                 str(tmp_path / 'gt.json'), '--out-dir',
                                 str(kept)])
    assert kept.is_dir()  # a folder that existed before stays


def _coco(seed: int, images: int = 20) -> dict:
    """``images`` 200x200 images, 2 boxes each, ids 1..images."""
    rng = np.random.default_rng(seed)
    anns = []
    for k in range(2 * images):
        w, h = rng.uniform(15, 50, 2)
        x, y = rng.uniform(0, 200 - w), rng.uniform(0, 200 - h)
        anns.append(dict(id=k + 1, image_id=k % images + 1, category_id=1,
                         bbox=[x, y, w, h], area=w * h, iscrowd=0))
    return dict(images=[dict(id=i + 1, file_name=f'{seed}_{i}.jpg', width=200,
                             height=200) for i in range(images)],
                annotations=anns,
                categories=[dict(id=1, name='rust')])


@pytest.mark.parametrize('tool', ['error_breakdown', 'threshold_sweep'])
def test_predictions_of_another_dataset_with_overlapping_ids(tmp_path, tool):
    """A COCO results file carries no file names: ids 1..20 exist in both
    datasets. The boxes fit their own images far better than shuffled ones,
    and those of another dataset do not: an error naming both files."""
    own, other = _coco(0), _coco(1)
    rng = np.random.default_rng(2)
    results = [dict(image_id=a['image_id'], category_id=1,
                    bbox=[a['bbox'][0] + rng.uniform(-2, 2), a['bbox'][1],
                          a['bbox'][2], a['bbox'][3]],
                    score=float(rng.uniform(0.3, 1.0)))
               for a in own['annotations']]
    preds = tmp_path / 'preds.json'
    preds.write_text(json.dumps(results))
    paths = {}
    for name, gt in (('own', own), ('other', other)):
        paths[name] = tmp_path / f'{name}_gt.json'
        paths[name].write_text(json.dumps(gt))
    code, _, err = run_tool(tool, [str(preds), '--gt', str(paths['own'])])
    assert code == 0, err
    code, _, err = run_tool(tool, [str(preds), '--gt', str(paths['other'])])
    assert code == 2 and 'no better than' in err
    assert 'preds.json' in err and 'other_gt.json' in err
