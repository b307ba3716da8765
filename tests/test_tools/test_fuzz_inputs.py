"""Fuzz every tool with malformed inputs, in-process through ``run_cli``.

Hypothesis mutates one field of a small valid input (COCO ground truth,
COCO results, mmdet pickles, VOC XML, configs, work_dir files) or the file
itself (truncated, empty, binary, a JSON scalar, a unicode name). Every run
must end in one of two ways:

- exit 2 with exactly one ``error:`` line on stderr that names the file;
- a normal exit with the bad record counted, and then the numbers equal a
  run on the clean subset (the input with that record removed).

Never a traceback, never exit 3 (mmext's "internal error").
"""
import contextlib
import copy
import io
import json
import os
import pickle
import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis_fixtures import load_tool
from mmext.data import load_coco
from mmext.utils import MMExtError, run_cli

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

#: Values a careless writer puts where a field belongs.
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(10**12, 10**13),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.lists(st.integers(0, 5), max_size=5),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=2))


def clean_coco(seed: int = 0) -> dict:
    """6 images of 3 sizes, 3 classes, 18 boxes well inside the images."""
    rng = np.random.default_rng(seed)
    sizes = [(320, 240), (200, 200), (640, 480)]
    images = [dict(id=i + 1, file_name=f'img_{i}.jpg', width=sizes[i % 3][0],
                   height=sizes[i % 3][1]) for i in range(6)]
    anns = []
    for k in range(18):
        im = images[k % 6]
        w, h = rng.uniform(10, 60), rng.uniform(10, 60)
        x = rng.uniform(0, im['width'] - w)
        y = rng.uniform(0, im['height'] - h)
        anns.append(dict(id=k + 1, image_id=im['id'], category_id=k % 3 + 1,
                         bbox=[round(x, 1), round(y, 1), round(w, 1),
                               round(h, 1)],
                         area=round(w * h, 1), iscrowd=0))
    cats = [dict(id=c + 1, name=n) for c, n in
            enumerate(['rust', 'chip', 'scratch'])]
    return dict(images=images, annotations=anns, categories=cats)


def results_for(gt: dict, seed: int = 0) -> list:
    """COCO results: each GT box jittered (a hit) plus one background box."""
    rng = np.random.default_rng(seed)
    out = []
    for ann in gt['annotations']:
        x, y, w, h = ann['bbox']
        out.append(dict(image_id=ann['image_id'],
                        category_id=ann['category_id'],
                        bbox=[x + rng.uniform(-2, 2), y + rng.uniform(-2, 2),
                              w, h], score=float(rng.uniform(0.3, 1.0))))
        out.append(dict(image_id=ann['image_id'],
                        category_id=ann['category_id'],
                        bbox=[1.0, 1.0, 8.0, 8.0],
                        score=float(rng.uniform(0.0, 0.5))))
    return out


def run_tool(name: str, argv: list):
    """``(exit code, stdout, stderr)`` of ``tools/<name>.py argv``."""
    tool = load_tool(name)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_cli(tool.main, argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_clean_outcome(code, err: str, bad_file: str, ok_codes=(0,)):
    """Exit 2 with one line naming ``bad_file``, or an allowed exit code."""
    assert 'Traceback' not in err, err
    assert code != 3, f'internal error: {err}'
    if code == 2:
        errors = [ln for ln in err.splitlines() if 'error:' in ln]
        assert len(errors) == 1, err
        name = os.path.basename(bad_file)
        assert name in errors[0], f'{errors[0]!r} does not name {name}'
    else:
        assert code in ok_codes, (code, err)


def _write(folder: str, name: str, data) -> str:
    path = os.path.join(folder, name)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f)
    return path


@st.composite
def coco_mutation(draw):
    """``(section, index, field, value)``; field ``None`` replaces the whole
    entry, ``'<del>'`` as value deletes the field."""
    section = draw(st.sampled_from(['images', 'annotations', 'categories']))
    fields = dict(images=['id', 'width', 'height', 'file_name'],
                  annotations=['image_id', 'category_id', 'bbox', 'iscrowd',
                               'id', 'area'],
                  categories=['id', 'name'])[section]
    index = draw(st.integers(0, 17))
    field = draw(st.sampled_from(fields + [None]))
    value = draw(st.one_of(JUNK, st.just('<del>'),
                           st.lists(JUNK, min_size=4, max_size=4)))
    return section, index, field, value


def apply_mutation(data: dict, mutation) -> dict:
    section, index, field, value = mutation
    data = copy.deepcopy(data)
    entries = data[section]
    index %= len(entries)
    if field is None:
        if value == '<del>':
            del entries[index]
        else:
            entries[index] = value
    elif value == '<del>':
        entries[index].pop(field, None)
    else:
        entries[index][field] = value
    return data


def sweep_json(tmp: str, preds: str, gt_path: str, name: str):
    """``(exit code, stderr, sweep.json or None)`` of threshold_sweep."""
    out = os.path.join(tmp, name)
    code, _, err = run_tool('threshold_sweep', [
        preds, '--gt', gt_path, '--out-dir', out, '--no-plots'])
    if code != 0:
        return code, err, None
    with open(os.path.join(out, 'sweep.json')) as f:
        return code, err, json.load(f)


def assert_same_sweep(result: dict, expected: dict) -> None:
    assert result['map50'] == pytest.approx(expected['map50'], abs=1e-12)
    assert result['sweep'] == expected['sweep']


def _dropped(table) -> int:
    return sum(1 for s in table.skipped if not s.kept)


@FUZZ
@given(mutation=coco_mutation())
def test_coco_reader_accounts_for_every_annotation(mutation):
    """The reader's own contract: a bad annotation is dropped and counted,
    every other box is read exactly as in the clean file."""
    tmp = tempfile.mkdtemp()
    try:
        gt = clean_coco()
        clean = load_coco(_write(tmp, 'clean.json', gt))
        bad = _write(tmp, 'bad.json', apply_mutation(gt, mutation))
        code, _, err = run_tool('class_counts', [bad])
        assert_clean_outcome(code, err, bad)
        if code != 0 or mutation[0] != 'annotations':
            return
        table = load_coco(bad)
        rows = lambda t: sorted(map(tuple, np.column_stack(  # noqa: E731
            [t.image_id, t.label, t.bboxes()]).round(6).tolist()))
        before, after = rows(clean), rows(table)
        removed = [r for r in before if r not in after]
        assert len(removed) <= 1
        if mutation[2] is None and mutation[3] == '<del>':
            assert len(table) == len(clean) - 1
        else:
            assert len(table) + _dropped(table) == len(clean) + _dropped(clean)
    finally:
        shutil.rmtree(tmp)


def _load_either(path: str, fast: bool):
    """The table, or the one-line error, of one reader path."""
    try:
        return load_coco(path, fast=fast)
    except MMExtError as exc:
        return str(exc)


def assert_same_table(a, b) -> None:
    """Two BoxTables (or two error messages) are equal field by field."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, str):
        assert a == b
        return
    fields_a, fields_b = vars(a), vars(b)
    assert fields_a.keys() == fields_b.keys()
    for key, value in fields_a.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, fields_b[key], err_msg=key)
        else:
            assert value == fields_b[key], key


@FUZZ
@given(mutation=coco_mutation())
def test_coco_reader_paths_agree(mutation):
    """The compact-record path (msgspec) and the general path (any JSON)
    read a damaged file into the same table, skips and messages included."""
    tmp = tempfile.mkdtemp()
    try:
        bad = _write(tmp, 'bad.json', apply_mutation(clean_coco(), mutation))
        assert_same_table(_load_either(bad, True), _load_either(bad, False))
    finally:
        shutil.rmtree(tmp)


def _subset_without(gt: dict, mutation) -> dict:
    """The clean ground truth minus the record the mutation hit."""
    section, index, _, _ = mutation
    sub = copy.deepcopy(gt)
    del sub[section][index % len(sub[section])]
    return sub


@FUZZ
@given(mutation=coco_mutation())
def test_evaluation_tools_on_bad_ground_truth(mutation):
    """threshold_sweep and error_breakdown: one line, or the clean subset's
    numbers with the skipped ground truth counted."""
    tmp = tempfile.mkdtemp()
    try:
        gt = clean_coco()
        preds = _write(tmp, 'results.json', results_for(gt))
        bad = _write(tmp, 'gt_bad.json', apply_mutation(gt, mutation))
        code, err, result = sweep_json(tmp, preds, bad, 'bad_out')
        assert_clean_outcome(code, err, bad)
        code_e, _, err_e = run_tool('error_breakdown', [preds, '--gt', bad])
        assert_clean_outcome(code_e, err_e, bad)
        if code != 0 or mutation[0] != 'annotations':
            return
        if not result['skipped_ground_truth']:
            return  # a harmless change (area, id): nothing to compare
        sub = _write(tmp, 'gt_sub.json', _subset_without(gt, mutation))
        code, err, expected = sweep_json(tmp, preds, sub, 'sub_out')
        assert code == 0, err
        assert_same_sweep(result, expected)
    finally:
        shutil.rmtree(tmp)


def _write_images(folder: str, gt: dict) -> str:
    """Black PNGs of the clean ground truth's image sizes, in ``folder``."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    for im in gt['images']:
        cv2.imwrite(os.path.join(folder, im['file_name']),
                    np.zeros((im['height'], im['width'], 3), np.uint8))
    return folder


@FUZZ
@given(mutation=coco_mutation())
def test_check_dataset_on_bad_ground_truth(mutation):
    """check_dataset --ann: one line, or a verdict in which every record the
    reader drops is reported (a non-passing check counts it)."""
    tmp = tempfile.mkdtemp()
    try:
        gt = clean_coco()
        images = _write_images(os.path.join(tmp, 'images'), gt)
        bad = _write(tmp, 'gt_bad.json', apply_mutation(gt, mutation))
        out = os.path.join(tmp, 'out')
        code, _, err = run_tool('check_dataset', [
            '--ann', bad, '--img-dir', images, '--out-dir', out,
            '--num-drawn', '0'])
        assert_clean_outcome(code, err, bad, ok_codes=(0, 1))
        if code == 2:
            return
        with open(os.path.join(out, 'checks.json')) as f:
            checks = json.load(f)['checks']
        reported = sum(c['count'] for c in checks
                       if c['status'] in ('warn', 'fail'))
        assert reported >= _dropped(load_coco(bad)), checks
    finally:
        shutil.rmtree(tmp)


@st.composite
def result_mutation(draw):
    index = draw(st.integers(0, 35))
    field = draw(st.sampled_from(['image_id', 'category_id', 'bbox',
                                  'score', None]))
    value = draw(st.one_of(JUNK, st.just('<del>'),
                           st.lists(JUNK, min_size=4, max_size=4)))
    return index, field, value


@FUZZ
@given(mutation=result_mutation())
def test_evaluation_tools_on_bad_detections(mutation):
    """A bad detection is skipped and counted; the numbers then equal the
    run on the results without it."""
    tmp = tempfile.mkdtemp()
    try:
        gt = clean_coco()
        gt_path = _write(tmp, 'gt.json', gt)
        results = results_for(gt)
        index, field, value = mutation
        bad_results = copy.deepcopy(results)
        if field is None:
            bad_results[index] = value
        elif value == '<del>':
            bad_results[index].pop(field)
        else:
            bad_results[index][field] = value
        bad = _write(tmp, 'results_bad.json', bad_results)
        code, err, result = sweep_json(tmp, bad, gt_path, 'out')
        assert_clean_outcome(code, err, bad)
        code_e, _, err_e = run_tool('error_breakdown', [bad, '--gt', gt_path])
        assert_clean_outcome(code_e, err_e, bad)
        # the images are absent: blank panels, counted, never a crash
        code_g, _, err_g = run_tool('gallery', [
            bad, '--gt', gt_path, '--img-dir', tmp, '--k', '1', '--out-dir',
            os.path.join(tmp, 'gallery')])
        assert_clean_outcome(code_g, err_g, bad)
        assert code_g == code_e
        if code != 0:
            return
        if not result['skipped_detections']:
            return
        assert sum(result['skipped_detections'].values()) == 1
        sub = _write(tmp, 'results_sub.json',
                     results[:index] + results[index + 1:])
        code, err, expected = sweep_json(tmp, sub, gt_path, 'sub')
        assert code == 0, err
        assert_same_sweep(result, expected)
    finally:
        shutil.rmtree(tmp)


#: How a whole file goes bad.
FILE_DAMAGE = st.sampled_from(
    ['truncate', 'empty', 'binary', 'scalar', 'folder', 'unicode_name'])


def damage_file(path: str, how: str, cut: float) -> str:
    """Damage ``path`` in place (or move it to a unicode name); returns the
    path the tool should be given."""
    with open(path, 'rb') as f:
        raw = f.read()
    if how == 'truncate':
        raw = raw[:max(1, int(len(raw) * cut))]
    elif how == 'empty':
        raw = b''
    elif how == 'binary':
        raw = bytes(range(256)) * 4
    elif how == 'scalar':
        raw = b'42'
    elif how == 'folder':
        os.remove(path)
        os.makedirs(path)
        return path
    elif how == 'unicode_name':
        new = os.path.join(os.path.dirname(path), 'défaut ü 缺陷.json')
        os.replace(path, new)
        return new
    with open(path, 'wb') as f:
        f.write(raw)
    return path


@FUZZ
@given(how=FILE_DAMAGE, cut=st.floats(0.05, 0.95), target=st.sampled_from(
    ['gt', 'results', 'pickle']))
def test_damaged_files(how, cut, target):
    tmp = tempfile.mkdtemp()
    try:
        gt = clean_coco()
        gt_path = _write(tmp, 'gt.json', gt)
        results = results_for(gt)
        preds = _write(tmp, 'results.json', results)
        if target == 'pickle':
            preds = os.path.join(tmp, 'preds.pkl')
            with open(preds, 'wb') as f:
                pickle.dump(_mmdet_results(results), f)
        victim = gt_path if target == 'gt' else preds
        victim = damage_file(victim, how, cut)
        if target == 'gt':
            gt_path = victim
        else:
            preds = victim
        if how == 'unicode_name':
            ok = (0,)  # still a valid file
        else:
            ok = ()
        for tool in ('threshold_sweep', 'error_breakdown'):
            code, _, err = run_tool(tool, [preds, '--gt', gt_path])
            assert_clean_outcome(code, err, victim, ok_codes=ok)
        if target == 'gt':
            for tool, argv in (('class_counts', [gt_path]),
                               ('anchor_fit', ['--ann', gt_path, '--original-size',
                                               '--num-ratios', '0'])):
                code, _, err = run_tool(tool, argv)
                assert_clean_outcome(code, err, victim, ok_codes=ok)
    finally:
        shutil.rmtree(tmp)


def _mmdet_results(results: list) -> list:
    """COCO results as mmdet's DumpDetResults pickle (labels 0-based)."""
    import torch
    by_image = {}
    for r in results:
        by_image.setdefault(r['image_id'], []).append(r)
    out = []
    for iid, rs in sorted(by_image.items()):
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                              (r['bbox'] for r in rs)])
        out.append(dict(img_id=iid, pred_instances=dict(
            bboxes=boxes, scores=torch.tensor([r['score'] for r in rs]),
            labels=torch.tensor([r['category_id'] - 1 for r in rs]))))
    return out


@FUZZ
@given(n=st.integers(0, 11), field=st.sampled_from(
    ['img_id', 'pred_instances', 'bboxes', 'scores', 'labels', None]),
    value=st.one_of(JUNK, st.just('<del>')),
    shape=st.sampled_from([(0,), (3,), (1, 3), (2, 4), (2, 5)]))
def test_bad_mmdet_pickles(n, field, value, shape):
    """Wrong types or shapes in a DumpDetResults pickle: one line, or the
    record counted."""
    import torch
    tmp = tempfile.mkdtemp()
    try:
        gt = clean_coco()
        gt_path = _write(tmp, 'gt.json', gt)
        results = _mmdet_results(results_for(gt))
        rec = results[n % len(results)]
        if field is None:
            results[n % len(results)] = value
        elif field in ('img_id', 'pred_instances'):
            if value == '<del>':
                rec.pop(field)
            else:
                rec[field] = value
        else:
            rec['pred_instances'][field] = (
                torch.zeros(shape) if value == '<del>' else value)
        path = os.path.join(tmp, 'bad.pkl')
        with open(path, 'wb') as f:
            pickle.dump(results, f)
        for tool in ('threshold_sweep', 'error_breakdown'):
            code, _, err = run_tool(tool, [path, '--gt', gt_path])
            assert_clean_outcome(code, err, path)
        code, _, err = run_tool('check_dataset', [
            '--ann', gt_path, '--img-dir', _write_images(
                os.path.join(tmp, 'images'), gt), '--predictions', path,
            '--num-drawn', '0', '--out-dir', os.path.join(tmp, 'cd')])
        assert_clean_outcome(code, err, path, ok_codes=(0, 1))
    finally:
        shutil.rmtree(tmp)


VOC_XML = """<annotation><filename>{name}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
<object><name>rust</name><difficult>0</difficult>
<bndbox><xmin>10</xmin><ymin>12</ymin><xmax>60</xmax><ymax>40</ymax></bndbox></object>
<object><name>chip</name><difficult>0</difficult>
<bndbox><xmin>30</xmin><ymin>30</ymin><xmax>90</xmax><ymax>100</ymax></bndbox></object>
</annotation>"""

VOC_DAMAGE = [
    ('<size><width>{w}</width><height>{h}</height><depth>3</depth></size>', ''),
    ('<annotation>', '<notvoc>'), ('</annotation>', '</notvoc>'),
    ('<xmin>10</xmin>', '<xmin>ten</xmin>'), ('<xmax>60</xmax>', ''),
    ('<bndbox>', '<box>'), ('</bndbox>', '</box>'),
    ('<width>{w}</width>', '<width>nan</width>'),
    ('<width>{w}</width>', '<width>-3</width>'),
    ('<name>rust</name>', '<name></name>'), ('<name>rust</name>', ''),
    ('<filename>{name}.jpg</filename>', ''),
    ('</annotation>', ''),  # truncated: not well-formed
]


@settings(FUZZ, max_examples=15)
@given(damage=st.sets(st.sampled_from(range(len(VOC_DAMAGE))), min_size=1,
                      max_size=3), victim=st.integers(0, 2))
def test_bad_voc_xml(damage, victim):
    """A VOC folder with one damaged XML: its boxes are skipped and counted,
    the other files read as before."""
    tmp = tempfile.mkdtemp()
    try:
        for k in range(3):
            text = VOC_XML
            if k == victim:
                for d in sorted(damage):
                    old, new = VOC_DAMAGE[d]
                    text = text.replace(old, new)
            with open(os.path.join(tmp, f'im{k}.xml'), 'w') as f:
                f.write(text.format(name=f'im{k}', w=200, h=150))
        bad = os.path.join(tmp, f'im{victim}.xml')
        code, out, err = run_tool('class_counts', [tmp])
        assert_clean_outcome(code, err, bad)
        if code == 0:
            assert 'skipped' in out or 'repaired' in out or damage <= {11}
        code, _, err = run_tool('anchor_fit', ['--voc-dir', tmp, '--original-size',
                                               '--num-ratios', '0'])
        assert_clean_outcome(code, err, bad)
    finally:
        shutil.rmtree(tmp)


CONFIG_DAMAGE = [
    "model = dict(rpn_head=dict(anchor_generator=dict(ratios=[])))",
    "model = dict(rpn_head=dict(anchor_generator=dict(ratios=['wide'])))",
    "model = dict(rpn_head=dict(anchor_generator=dict(ratios=[-1.0, 1.0])))",
    "model = dict(roi_head=dict(bbox_head=dict(num_classes='five')))",
    "model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict("
    "type='FocalLoss', gamma=['a', 2]))))",
    "model = [1, 2]",
    "train_dataloader = dict(dataset=dict(datasets=[1, 2]))",
    "train_dataloader = dict(dataset=[])",
    "model = dict(rpn_head=dict(anchor_generator=dict(strides=[0, 8])))",
    "model = dict(rpn_head=dict(anchor_generator=dict(scales=None)))",
    "train_cfg = dict(max_iters='long')",
    "model = dict(_delete_=True)",
]


@settings(FUZZ, max_examples=12)
@given(lines=st.lists(st.sampled_from(CONFIG_DAMAGE), min_size=1,
                      max_size=2, unique=True),
       base=st.sampled_from(['faster', 'empty', 'scalar', 'syntax']))
def test_bad_configs(tiny_demo_root, lines, base):
    """check_config, config_diff and anchor_fit on broken configs: one line
    naming the config, or a finding (check_config exits 1 for those)."""
    from helpers import ROOT
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, 'bad_cfg.py')
        faster = os.path.join(
            ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py')
        text = {'faster': f'_base_ = [{faster!r}]\n' + '\n'.join(lines),
                'empty': '', 'scalar': '42\n',
                'syntax': 'model = dict(type=\n'}[base]
        with open(path, 'w') as f:
            f.write(text + '\n')
        code, _, err = run_tool('check_config', [path])
        assert_clean_outcome(code, err, path, ok_codes=(0, 1))
        if base in ('empty', 'scalar'):
            assert code != 0, 'a config without a model passed check_config'
        code, _, err = run_tool('config_diff', [faster, path])
        assert_clean_outcome(code, err, path, ok_codes=(0, 1))
        code, _, err = run_tool('anchor_fit', [
            path, '--num-ratios', '0', '--data-root', tiny_demo_root])
        assert_clean_outcome(code, err, path)
        code, _, err = run_tool('ablate', [
            faster, path, '--out-dir', os.path.join(tmp, 'ablate')])
        assert_clean_outcome(code, err, path)
        code, _, err = run_tool('check_dataset', [
            path, '--data-root', tiny_demo_root, '--skip-pipeline',
            '--num-drawn', '0', '--out-dir', os.path.join(tmp, 'cd')])
        assert_clean_outcome(code, err, path, ok_codes=(0, 1))
    finally:
        shutil.rmtree(tmp)


def _work_dir_files(work_dir: str) -> list:
    found = []
    for root, _, files in os.walk(work_dir):
        for f in files:
            if f.endswith(('.json', '.jsonl', '.log', 'last_checkpoint')):
                found.append(os.path.relpath(os.path.join(root, f), work_dir))
    return sorted(found)


JSONL_DAMAGE = st.sampled_from([b'42\n', b'[1, 2]\n', b'{"step": "x"}\n',
                                b'\xff\xfe\x00binary\n', b'{"step": NaN}\n',
                                b'{"truncated": \n'])


@settings(FUZZ, max_examples=8)
@given(data=st.data(), how=FILE_DAMAGE, cut=st.floats(0.05, 0.95),
       line=JSONL_DAMAGE)
def test_damaged_work_dirs(demo_eval_run, data, how, cut, line):
    """Run-reading tools on a real tiny run with one file damaged (or a bad
    line appended): one line naming the file or the run, or a report with
    that input left out."""
    tmp = tempfile.mkdtemp()
    try:
        work = os.path.join(tmp, 'run')
        shutil.copytree(demo_eval_run['work_dir'], work)
        with open(os.path.join(work, 'pseudo_label_stats.jsonl'), 'w') as f:
            f.write(json.dumps(dict(step=1, stage='cls', label=0, kept=3,
                                    raw=5)) + '\n')
        victim = os.path.join(work, data.draw(st.sampled_from(
            _work_dir_files(work))))
        if data.draw(st.booleans()) and how != 'folder':
            with open(victim, 'ab') as f:
                f.write(line)
        else:
            victim = damage_file(victim, how, cut)
        cfg = demo_eval_run['config']
        runs = [
            ('demo_summary', [work]),
            ('plot_pseudo_stats', [work, '--out-dir',
                                   os.path.join(tmp, 'pp')]),
            ('class_efficiency', ['--work-dir', work, '--config', cfg,
                                  '--data-root', demo_eval_run['data_root']]),
            ('report', [work, '--out', os.path.join(tmp, 'r', 'r.html')]),
            ('compare_runs', [f'a={work}', f'b={work}', '--out-dir',
                              os.path.join(tmp, 'cmp'), '--resamples', '20']),
            ('investigate', [work, '--config', cfg, '--data-root',
                             demo_eval_run['data_root'], '--no-anchor-search',
                             '--out-dir', os.path.join(tmp, 'inv')]),
        ]
        for tool, argv in runs:
            code, _, err = run_tool(tool, argv)
            assert 'Traceback' not in err, (tool, err)
            assert code in (0, 1, 2), (tool, code, err)
            if code == 2:
                errors = [ln for ln in err.splitlines() if 'error:' in ln]
                assert len(errors) == 1, (tool, err)
                assert (os.path.basename(victim) in errors[0]
                        or work in errors[0]), (tool, errors[0])
    finally:
        shutil.rmtree(tmp)


def test_string_image_ids_give_the_integer_numbers(tmp_path):
    """Ultralytics-style string ids (file stems) in the ground truth and the
    results give exactly the numbers of the same data with integer ids."""
    gt = clean_coco()
    results = results_for(gt)
    name = {im['id']: f'img{im["id"] + 60}' for im in gt['images']}
    gt_s = copy.deepcopy(gt)
    for im in gt_s['images']:
        im['id'] = name[im['id']]
    for ann in gt_s['annotations']:
        ann['image_id'] = name[ann['image_id']]
    res_s = [dict(r, image_id=name[r['image_id']]) for r in results]
    outs = {}
    for tag, g, r in (('int', gt, results), ('str', gt_s, res_s)):
        g_path = _write(str(tmp_path), f'gt_{tag}.json', g)
        r_path = _write(str(tmp_path), f'res_{tag}.json', r)
        out = str(tmp_path / tag)
        code, _, err = run_tool('threshold_sweep', [
            r_path, '--gt', g_path, '--out-dir', out, '--no-plots'])
        assert code == 0, err
        with open(os.path.join(out, 'sweep.json')) as f:
            outs[tag] = json.load(f)
        code, stdout, err = run_tool('error_breakdown', [r_path, '--gt',
                                                         g_path])
        assert code == 0, err
        outs[tag + '_eb'] = stdout
    assert outs['int']['sweep'] == outs['str']['sweep']
    assert outs['int']['map50'] == outs['str']['map50'] > 0.5
    assert not outs['str']['skipped_detections']
    assert outs['int_eb'] == outs['str_eb'].replace('gt_str', 'gt_int') \
        .replace('res_str', 'res_int')
