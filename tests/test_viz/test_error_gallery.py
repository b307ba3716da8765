"""The error gallery draws the breakdown's own cases, ranked as it says."""
import json
import os

import numpy as np
import pytest

from mmext.data import load_coco
from mmext.evaluation.error_breakdown import error_breakdown
from mmext.evaluation.predictions import load_detections
from mmext.viz.error_gallery import (GALLERY_KINDS, gallery_cases,
                                     write_gallery)


def _case(tmp_path):
    """Two classes on 6 real PNG images: hits, a swapped class, a loose box,
    a duplicate, background boxes and missed boxes."""
    import mmcv
    rng = np.random.default_rng(0)
    images, anns, results = [], [], []
    (tmp_path / 'img').mkdir()
    for i in range(6):
        name = f'im_{i}.png'
        mmcv.imwrite(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8),
                     str(tmp_path / 'img' / name))
        images.append(dict(id=i + 1, file_name=name, width=160, height=120))
        for j in range(2):
            x, y = 10 + 70 * j, 20 + 5 * i
            w, h = 30 + 5 * i, 20 + 3 * j
            cat = j + 1
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=cat, bbox=[x, y, w, h], area=w * h,
                             iscrowd=0))
            if (i + j) % 3 == 0:
                continue  # missed
            score = float(rng.uniform(0.3, 0.9))
            box = [x, y, w, h]
            if (i + j) % 3 == 1:
                results.append(dict(image_id=i + 1, category_id=cat,
                                    bbox=box, score=score))
                results.append(dict(image_id=i + 1, category_id=cat,
                                    bbox=box, score=score / 2))  # duplicate
            else:
                results.append(dict(image_id=i + 1, category_id=3 - cat,
                                    bbox=box, score=score))  # swapped
                results.append(dict(image_id=i + 1, category_id=cat,
                                    bbox=[x + w * 0.6, y, w, h],
                                    score=score / 3))  # loose
        results.append(dict(image_id=i + 1, category_id=1,
                            bbox=[120, 90, 20, 20],
                            score=float(rng.uniform(0.05, 0.5))))
    gt_path = tmp_path / 'gt.json'
    gt_path.write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=1, name='rust'), dict(id=2, name='chip')])))
    res_path = tmp_path / 'res.json'
    res_path.write_text(json.dumps(results))
    gt = load_coco(str(gt_path))
    dets = load_detections(str(res_path), gt, gt_json=str(gt_path))
    return gt, dets, error_breakdown(gt, dets)


@pytest.mark.parametrize('k', [1, 2, 8])
def test_cases_are_the_breakdowns_top_k(tmp_path, k):
    gt, dets, bd = _case(tmp_path)
    cases = gallery_cases(gt, dets, bd, k)
    for kind in GALLERY_KINDS[1:]:
        for c, name in enumerate(gt.class_names):
            rows = [r for r in np.flatnonzero(bd.det_error == kind)
                    if (gt.label[bd.det_target[r]] if kind == 'classification'
                        else dets.label[r]) == c]
            want = sorted(rows, key=lambda r: -dets.score[r])[:k]
            got = [x.det_row for x in cases.get(name, {}).get(kind, [])]
            assert got == want, (kind, name)
    for c, name in enumerate(gt.class_names):
        rows = [g for g in np.flatnonzero(bd.gt_missed) if gt.label[g] == c]
        area = (gt.x2 - gt.x1) * (gt.y2 - gt.y1)
        want = sorted(rows, key=lambda g: -area[g])[:k]
        got = [x.gt_row for x in cases.get(name, {}).get('missed', [])]
        assert got == want
    # every kind of the case occurs, so the comparison above is not empty
    drawn = {kind for kinds in cases.values() for kind in kinds}
    assert {'missed', 'classification', 'localization', 'duplicate',
            'background'} <= drawn


def test_captions_name_file_class_score_iou_and_type(tmp_path):
    gt, dets, bd = _case(tmp_path)
    cases = gallery_cases(gt, dets, bd, 8)
    swapped = cases['rust']['classification'][0]
    assert 'taken for chip' in swapped.caption
    assert swapped.iou == pytest.approx(1.0)
    assert f'score {swapped.score:.2f}' in swapped.caption
    loose = cases['rust']['localization'][0]
    assert 0.1 <= loose.iou < 0.5 and f'IoU {loose.iou:.2f}' in loose.caption
    assert gt.file_names[loose.image_row] in loose.caption


def test_write_gallery_draws_every_case(tmp_path):
    gt, dets, bd = _case(tmp_path)
    out = write_gallery(gt, dets, bd, str(tmp_path / 'img'),
                        str(tmp_path / 'gallery'), k=3)
    n = sum(len(v) for kinds in gallery_cases(gt, dets, bd, 3).values()
            for v in kinds.values())
    assert out['cases'] == n and not out['unreadable']
    for path in out['images']:
        assert os.path.getsize(path) > 1000
    page = open(out['index']).read()
    assert page.count('<li>') == n and 'taken for chip' in page
    # a wrong image folder is counted, not a crash
    out = write_gallery(gt, dets, bd, str(tmp_path / 'nowhere'),
                        str(tmp_path / 'g2'), k=1)
    assert out['unreadable']


def test_error_breakdown_gallery_flag(tmp_path):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..',
                                    'test_tools'))
    from test_fuzz_inputs import run_tool
    _case(tmp_path)
    res, gt = str(tmp_path / 'res.json'), str(tmp_path / 'gt.json')
    code, _, err = run_tool('error_breakdown', [res, '--gt', gt,
                                                '--gallery', '2'])
    assert code == 2 and '--out-dir' in err
    code, _, err = run_tool('error_breakdown', [res, '--gt', gt, '--gallery',
                                                '2', '--out-dir',
                                                str(tmp_path / 'o1')])
    assert code == 2 and 'gt.json' in err and '--img-dir' in err
    code, out, err = run_tool('error_breakdown', [
        res, '--gt', gt, '--gallery', '2', '--img-dir', str(tmp_path / 'img'),
        '--out-dir', str(tmp_path / 'o2')])
    assert code == 0, err
    assert (tmp_path / 'o2' / 'gallery' / 'index.html').is_file()
    assert 'gallery:' in out


def test_crops_are_the_boxes_of_the_error_table(tmp_path):
    """Every drawn case is a row of the per-box table: same type, class,
    score and boxes; the table's counts per type and class equal the
    breakdown's."""
    from mmext.evaluation.error_table import error_rows
    gt, dets, bd = _case(tmp_path)
    rows = error_rows(gt, dets, bd)
    for kinds in gallery_cases(gt, dets, bd, 8).values():
        for kind, cases in kinds.items():
            for case in cases:
                if case.det_row >= 0:
                    r = case.det_row
                    want = dict(type=kind, score=float(dets.score[r]),
                                x1=float(dets.x1[r]), y2=float(dets.y2[r]))
                else:
                    g = case.gt_row
                    want = dict(type='missed', gt_x1=float(gt.x1[g]),
                                gt_y2=float(gt.y2[g]))
                want['class'] = case.cls
                assert any(all(row[k] == v for k, v in want.items())
                           for row in rows), want
    for kind in ('classification', 'localization', 'duplicate',
                 'background', 'both', 'missed'):
        for c, name in enumerate(gt.class_names):
            n = sum(r['type'] == kind and r['class'] == name for r in rows)
            assert n == bd.counts[kind][c], (kind, name)
    tps = [r for r in rows if r['type'] == 'tp']
    assert tps and all(r['iou'] >= 0.5 for r in tps)


def test_gallery_tool(tmp_path):
    import csv
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..',
                                    'test_tools'))
    from test_fuzz_inputs import run_tool
    _case(tmp_path)
    code, out, err = run_tool('gallery', [
        str(tmp_path / 'res.json'), '--gt', str(tmp_path / 'gt.json'),
        '--img-dir', str(tmp_path / 'img'), '--out-dir', str(tmp_path / 'g'),
        '--k', '2'])
    assert code == 0, err
    with open(tmp_path / 'g' / 'errors.csv') as f:
        table = list(csv.DictReader(f))
    assert {r['type'] for r in table} >= {'tp', 'missed', 'classification'}
    assert (tmp_path / 'g' / 'index.html').is_file()
    code, _, err = run_tool('gallery', [str(tmp_path / 'res.json'), '--gt',
                                        str(tmp_path / 'gt.json'),
                                        '--out-dir', str(tmp_path / 'g2')])
    assert code == 2 and '--img-dir' in err
    assert not (tmp_path / 'g2').exists()


def test_confusion_rows_are_the_classification_counts(tmp_path):
    from mmext.evaluation.error_table import (classification_confusion,
                                              error_rows)
    gt, dets, bd = _case(tmp_path)
    matrix = classification_confusion(error_rows(gt, dets, bd),
                                      list(gt.class_names))
    assert matrix.sum(axis=1).tolist() == bd.counts['classification'].tolist()
    assert np.trace(matrix) == 0 and matrix.sum() > 0
    # the swapped boxes of the case: rust taken for chip and back
    assert matrix[0, 1] > 0 and matrix[1, 0] > 0


def test_lost_images_are_drawn_with_their_boxes(tmp_path):
    """threshold_sweep --compare --gallery: each lost image's best correct
    detection is a detection of the file, scored between the thresholds,
    and the picture is written."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..',
                                    'test_tools'))
    from test_fuzz_inputs import run_tool

    from mmext.evaluation.threshold_sweep import images_lost, sweep_thresholds
    gt, dets, _ = _case(tmp_path)
    result = sweep_thresholds(gt, dets)
    lost = images_lost(result, gt, 0.3, 0.7, dets=dets)
    assert lost
    boxes = np.stack([dets.x1, dets.y1, dets.x2, dets.y2], 1)
    for row in lost:
        hit = np.flatnonzero((np.abs(boxes - row['det_box']) < 1e-9).all(1))
        assert len(hit) and 0.3 <= dets.score[hit[0]] < 0.7
    code, out, err = run_tool('threshold_sweep', [
        str(tmp_path / 'res.json'), '--gt', str(tmp_path / 'gt.json'),
        '--compare', '0.3', '0.7', '--gallery', '4', '--img-dir',
        str(tmp_path / 'img'), '--out-dir', str(tmp_path / 'sweep')])
    assert code == 0, err
    assert (tmp_path / 'sweep' / 'lost_images.png').stat().st_size > 1000
    code, _, err = run_tool('threshold_sweep', [
        str(tmp_path / 'res.json'), '--gt', str(tmp_path / 'gt.json'),
        '--gallery', '4'])
    assert code == 2 and '--compare' in err
