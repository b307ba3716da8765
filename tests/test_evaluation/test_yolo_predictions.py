"""YOLO users' files through the tools: the issue's acceptance.

An Ultralytics-style pair (YOLO ``data.yaml`` ground truth and a
``predictions.json`` as ``DetectionValidator.pred_to_json`` writes it:
``image_id`` the file stem, an int when numeric, ``file_name``,
``category_id`` = class index + 1, bbox rounded to 3 and score to 5
decimals) gives exactly the numbers of the same data with integer ids (the
hand-written COCO ground truth with category ids 10/20/30 and a COCO results
json). The ``ultralytics`` package cannot run here (see
``tests/yolo_dataset.py``), so the files are written from its documented
format.
"""
import json
import os

import numpy as np
import pytest

from analysis_fixtures import load_tool
from mmext.evaluation.predictions import load_detections
from mmext.data import load_yolo
from yolo_dataset import (COCO_CATS, COCO_IDS, VAL_BOXES, VAL_SIZES,
                          make_yolo_dataset, ultralytics_image_id)


def _detections(seed=0):
    """(file, label, [x, y, w, h], score): jittered hits, wrong classes,
    duplicates and background boxes on every val image."""
    rng = np.random.default_rng(seed)
    dets = []
    for name, boxes in VAL_BOXES.items():
        w_img, h_img = VAL_SIZES[name]
        for label, x1, y1, x2, y2 in boxes:
            j = rng.uniform(-2, 2, 4)
            box = [x1 + j[0], y1 + j[1], x2 - x1 + j[2], y2 - y1 + j[3]]
            dets.append((name, label, box, rng.uniform(0.3, 1)))
            dets.append((name, (label + 1) % 3, box, rng.uniform(0, 0.6)))
            dets.append((name, label, [x1 + 1, y1, x2 - x1, y2 - y1],
                         rng.uniform(0, 0.5)))
        for _ in range(3):
            x, y = rng.uniform(0, w_img - 8), rng.uniform(0, h_img - 8)
            dets.append((name, int(rng.integers(3)),
                         [x, y, rng.uniform(3, 8), rng.uniform(3, 8)],
                         rng.uniform(0, 0.9)))
    return [(n, k, [round(float(v), 3) for v in b], round(float(s), 5))
            for n, k, b, s in dets]


def _write(path, records):
    path.write_text(json.dumps(records))
    return str(path)


def ultralytics_predictions(path, dets, base=1):
    return _write(path, [
        dict(image_id=ultralytics_image_id(n), file_name=n,
             category_id=k + base, bbox=b, score=s) for n, k, b, s in dets])


def coco_results(path, dets):
    return _write(path, [
        dict(image_id=COCO_IDS[n], category_id=COCO_CATS[k], bbox=b, score=s)
        for n, k, b, s in dets])


@pytest.fixture
def pair(tmp_path):
    ds = make_yolo_dataset(tmp_path)
    dets = _detections()
    ds['dets'] = dets
    ds['ultra'] = ultralytics_predictions(tmp_path / 'predictions.json', dets)
    ds['coco_res'] = coco_results(tmp_path / 'coco_results.json', dets)
    return ds


def _sweep(tmp_path, preds, gt, *extra):
    out = tmp_path / f'sweep_{len(list(tmp_path.iterdir()))}'
    assert load_tool('threshold_sweep').main(
        [preds, '--gt', gt, '--out-dir', str(out), '--no-plots',
         '--compare', '0.3', '0.7', *extra]) == 0
    return json.loads((out / 'sweep.json').read_text())


def _breakdown(tmp_path, preds, gt, *extra):
    out = tmp_path / f'eb_{len(list(tmp_path.iterdir()))}'
    assert load_tool('error_breakdown').main(
        [preds, '--gt', gt, '--out-dir', str(out), *extra]) == 0
    return json.loads((out / 'error_breakdown.json').read_text())


def _without_ids(lost):
    """Lost images without the id, file names as base names (YOLO's are
    relative to the dataset root, the COCO json's are bare)."""
    return [{k: (os.path.basename(v) if k == 'file_name' else v)
             for k, v in r.items() if k != 'image_id'} for r in lost]


def test_threshold_sweep_same_numbers_as_integer_ids(pair, tmp_path):
    yolo = _sweep(tmp_path, pair['ultra'], pair['yaml'])
    coco = _sweep(tmp_path, pair['coco_res'], pair['coco'])
    for key in ('map', 'map50', 'summary', 'sweep', 'skipped_detections'):
        assert yolo[key] == coco[key], key
    assert _without_ids(yolo['lost_images']) == _without_ids(
        coco['lost_images'])
    assert len(yolo['lost_images']) == 1
    assert yolo['skipped_detections'] == {}
    row = [r for r in yolo['sweep']
           if r['class'] == 'all' and r['threshold'] == 0.0][0]
    assert row['tp'] == 6 and row['fp'] > 0  # every GT box found at thr 0
    assert 0 < yolo['map50'] < 1


def test_error_breakdown_same_numbers_as_integer_ids(pair, tmp_path):
    for mode in ('tide', 'coco'):
        yolo = _breakdown(tmp_path, pair['ultra'], pair['yaml'],
                          '--dap-mode', mode)
        coco = _breakdown(tmp_path, pair['coco_res'], pair['coco'],
                          '--dap-mode', mode)
        assert yolo['rows'] == coco['rows']
        assert yolo['ref_map50'] == coco['ref_map50']
    total = yolo['rows'][-1]
    assert total['n_classification'] > 0 and total['n_duplicate'] > 0


def test_zero_based_category_ids_need_the_option(pair, tmp_path, capsys):
    zero = ultralytics_predictions(tmp_path / 'pred0.json', pair['dets'],
                                   base=0)
    ref = _sweep(tmp_path, pair['ultra'], pair['yaml'])
    capsys.readouterr()
    fixed = _sweep(tmp_path, zero, pair['yaml'], '--yolo-category-base', '0')
    assert fixed['sweep'] == ref['sweep'] and fixed['map'] == ref['map']
    assert 'yolo-category-base' not in capsys.readouterr().out
    # read as 1-based: class 0 is unknown (counted) and a note says why
    wrong = _sweep(tmp_path, zero, pair['yaml'])
    n_zero = sum(1 for _, k, _, _ in pair['dets'] if k == 0)
    assert wrong['skipped_detections'] == {'unknown category': n_zero}
    out = capsys.readouterr().out
    assert (f'{n_zero} detections have category_id 0' in out
            and '--yolo-category-base 0' in out)
    # and a 1-based file read as 0-based: id 3 = nc fits no class
    dets = load_detections(pair['ultra'], load_yolo(pair['yaml'], 'val'),
                           yolo_category_base=0)
    assert dets.skip_counts() == {'unknown category': sum(
        1 for _, k, _, _ in pair['dets'] if k == 2)}
    assert 'try --yolo-category-base 1' in dets.notes[0]


def test_predictions_align_by_id_without_file_name(pair, tmp_path):
    no_name = json.loads(open(pair['ultra']).read())
    for rec in no_name:
        del rec['file_name']
    path = _write(tmp_path / 'ids_only.json', no_name)
    gt = load_yolo(pair['yaml'], 'val')
    a = load_detections(path, gt)
    b = load_detections(pair['ultra'], gt)
    assert len(a) == len(b) == len(pair['dets'])
    np.testing.assert_array_equal(a.image_id, b.image_id)


def test_class_counts_and_anchor_fit_read_the_train_split(pair, tmp_path,
                                                          capsys):
    out = tmp_path / 'cc.json'
    assert load_tool('class_counts').main([pair['yaml'], '--json',
                                           str(out)]) == 0
    rows = json.loads(out.read_text())['classes']
    assert [(r['cls'], r['n_c']) for r in rows] == [
        ('rust', 2), ('chip', 1), ('scratch', 1)]
    assert 'skipped 1 annotation records: image missing' in \
        capsys.readouterr().out
    assert load_tool('class_counts').main([pair['yaml'] + ':val']) == 0
    assert 'repaired 1 annotation records: clipped to the image' in \
        capsys.readouterr().out
    fit_dir = tmp_path / 'fit'
    assert load_tool('anchor_fit').main(
        ['--ann', pair['yaml'] + ':val', '--scale', '128', '128',
         '--num-ratios', '0', '--no-progress', '--out-dir',
         str(fit_dir)]) == 0
    res = json.loads((fit_dir / 'anchor_fit.json').read_text())
    assert res['num_boxes'] == 6 and res['num_images'] == 5


def test_check_dataset_reads_a_data_yaml(pair, tmp_path, capsys):
    out = tmp_path / 'check'
    code = load_tool('check_dataset').main(
        ['--ann', pair['yaml'], '--out-dir', str(out),
         '--predictions', pair['ultra']])
    assert code == 1  # malformed label lines and a broken image fail
    report = json.loads((out / 'checks.json').read_text())
    rows = {(r['name'], r['scope']): r for r in report['checks']}
    val = 'val:data.yaml'
    assert rows[('malformed box', val)]['count'] == 5
    assert rows[('label outside the classes', val)]['count'] == 2
    assert rows[('image unreadable (skipped by the reader)', val)][
        'status'] == 'fail'
    assert rows[('image missing (skipped by the reader)', 'train:data.yaml')][
        'count'] == 1
    assert rows[('annotation size != image size', val)]['status'] == 'pass'
    assert rows[('segment label read as its box', val)]['status'] == 'info'
    assert rows[('box sticks out of the image (clipped)', val)][
        'count'] == 1
    assert not any(r['name'] == 'unreadable record' for r in report['checks'])
    assert report['class_counts'][val] == {'rust': 3, 'chip': 2,
                                           'scratch': 1}
    assert report['predictions']['recall_iou50'] == 1.0


def test_bad_data_yaml_is_one_line_exit_2(pair, tmp_path, capsys):
    from mmext.utils import run_cli
    bad = tmp_path / 'bad.yaml'
    bad.write_text('train: defects/images/val\nval: defects/images/val\n')
    with pytest.raises(SystemExit) as exc:
        run_cli(load_tool('threshold_sweep').main,
                [pair['ultra'], '--gt', str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and str(bad) in err and "'names'" in err
