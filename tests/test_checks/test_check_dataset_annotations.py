"""Annotation checks find each planted fault, and a clean dataset passes."""
import itertools
import os
import re

import numpy as np
from helpers import DEMO_CONFIG
from mmengine.config import Config

from mmext.checks.check_result import worst_status
from mmext.checks.dataset_check import (check_annotations, check_table,
                                          duplicate_box_pairs)
from mmext.data import load_coco, load_voc
from mmext.utils.config import set_data_root

from check_dataset_faults import copy_dataset, edit_json, labeled_json


def _by_name(results, scope_prefix='train:train_labeled'):
    return {r.name: r for r in results if r.scope.startswith(scope_prefix)}


def _demo_cfg(root):
    return set_data_root(Config.fromfile(DEMO_CONFIG), root)


def test_clean_demo_dataset_passes(tiny_demo_root):
    results, counts = check_annotations(_demo_cfg(tiny_demo_root))
    assert worst_status(results) in ('pass', 'info')
    table = load_coco(labeled_json(tiny_demo_root))
    assert counts['train:train_labeled.json'] == table.class_counts()
    assert {r.scope for r in results} == {
        'train:train_labeled.json', 'train:train_unlabeled.json', 'val:val.json'}


def test_planted_annotation_faults_are_found(tiny_demo_root, tmp_path):
    root = copy_dataset(tiny_demo_root, str(tmp_path / 'data'))
    data = {}

    def plant(d):
        images = d['images']
        # 1 missing image, 1 size mismatch, 1 empty image
        os.remove(os.path.join(root, 'images/train_labeled', images[0]['file_name']))
        images[1]['width'] += 7
        empty_id = images[2]['id']
        d['annotations'] = [a for a in d['annotations'] if a['image_id'] != empty_id]
        anns = d['annotations']
        # 1 box outside the image, 1 duplicate, 1 unknown category
        anns[0]['bbox'] = [500.0, 500.0, 10.0, 10.0]
        dup = dict(anns[1], id=10**6)
        anns.append(dup)
        anns[2]['category_id'] = 99
        data['dup_image'] = dup['image_id']

    edit_json(labeled_json(root), plant)
    results, _ = check_annotations(_demo_cfg(root))
    found = _by_name(results)
    for name in ('image missing', 'annotation size != image size',
                 'box outside the image', 'label outside the classes'):
        assert found[name].status == 'fail' and found[name].count == 1, name
    assert found['image without trainable boxes'].status == 'warn'
    assert found['image without trainable boxes'].count >= 1
    dup = found['duplicate boxes (same class, IoU >= 0.9)']
    assert dup.status == 'warn' and dup.count == 1
    assert 'IoU 1.00' in dup.examples[0]
    assert worst_status(results) == 'fail'


def test_unreadable_image_fails(tiny_demo_root, tmp_path):
    root = copy_dataset(tiny_demo_root, str(tmp_path / 'data'))
    table = load_coco(labeled_json(root))
    img_dir = os.path.join(root, 'images/train_labeled')
    with open(os.path.join(img_dir, table.file_names[3]), 'wb') as f:
        f.write(b'not a jpeg at all')
    found = {r.name: r for r in check_table(table, img_dir, 'x')}
    assert found['image unreadable'].count == 1
    assert table.file_names[3] in found['image unreadable'].examples[0]


def _brute_force_duplicates(table, thr):
    pairs = set()
    boxes = table.bboxes()
    for a, b in itertools.combinations(range(len(table)), 2):
        if table.image_id[a] != table.image_id[b] or table.label[a] != table.label[b]:
            continue
        lt = np.maximum(boxes[a, :2], boxes[b, :2])
        rb = np.minimum(boxes[a, 2:], boxes[b, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None))
        union = np.prod(boxes[a, 2:] - boxes[a, :2]) + np.prod(boxes[b, 2:] - boxes[b, :2]) - inter
        if inter / union >= thr:
            pairs.add((a, b))
    return pairs


def test_duplicate_pairs_match_brute_force(tiny_demo_root):
    table = load_coco(labeled_json(tiny_demo_root))
    rng = np.random.default_rng(0)
    # near-duplicates: jitter copies of 5 boxes by up to 1 px
    rows = rng.choice(len(table), 5, replace=False)
    for name in ('image_id', 'label', 'ignore', 'img_w', 'img_h'):
        setattr(table, name, np.r_[getattr(table, name), getattr(table, name)[rows]])
    for name in ('x1', 'y1', 'x2', 'y2'):
        col = getattr(table, name)
        setattr(table, name, np.r_[col, col[rows] + rng.uniform(-1, 1, 5)])
    for thr in (0.5, 0.9):
        got = {tuple(sorted(p[:2])) for p in duplicate_box_pairs(table, thr)}
        assert got == _brute_force_duplicates(table, thr)


VOC_XML = """<annotation><filename>{fn}</filename>
<size><width>64</width><height>48</height><depth>1</depth></size>
<object><name>{cls}</name><difficult>{diff}</difficult>
<bndbox><xmin>4</xmin><ymin>4</ymin><xmax>30</xmax><ymax>20</ymax></bndbox></object>
</annotation>"""


def test_voc_quirks(tmp_path):
    import cv2
    ann, img = tmp_path / 'ann', tmp_path / 'img'
    ann.mkdir()
    img.mkdir()
    for k in range(4):
        cv2.imwrite(str(img / f'a_{k}.jpg'), np.full((48, 64), 100, np.uint8))
    (ann / 'a_0.xml').write_text(VOC_XML.format(fn='a_0.jpg', cls='rust', diff=0))
    (ann / 'a_1.xml').write_text(VOC_XML.format(fn='a_1', cls='rust', diff=0))
    (ann / 'a_2.xml').write_text(VOC_XML.format(fn='a_2.jpg', cls='rust', diff=1))
    (ann / 'a_3.xml').write_text(VOC_XML.format(fn='a_3.jpg', cls='Rust', diff=0))
    (ann / 'a_4.xml').write_text('<annotation><filename>')
    table = load_voc(str(ann), img_dir=str(img), class_names=['rust'])
    found = {r.name: r for r in check_table(table, str(img), 'voc')}
    assert found['VOC filename without extension (repaired)'].count == 1
    assert found['difficult/crowd boxes (ignored in training)'].count == 1
    assert found['label outside the classes'].count == 1  # 'Rust' typo
    assert found['malformed annotation file'].count == 1
    assert found['greyscale image decoded as 3 channels'].count == 4
    assert found['image missing'].status == 'pass'


def test_neu_det_quirks_match_its_readme(neu_det_root):
    from helpers import ROOT
    cfg = Config.fromfile(os.path.join(
        ROOT, 'configs/neu_det/soft-teacher_faster-rcnn_tiny_neu-det.py'))
    set_data_root(cfg, neu_det_root)
    results, counts = check_annotations(cfg)
    assert worst_status(results) != 'fail'
    noext = {r.scope: r.count for r in results
             if r.name == 'VOC filename without extension (repaired)'}
    difficult = sum(r.count for r in results
                    if r.name == 'difficult/crowd boxes (ignored in training)')
    # Independent count: a text search of the XML files themselves.
    texts = {d: [open(os.path.join(neu_det_root, d, f)).read()
                 for f in os.listdir(os.path.join(neu_det_root, d))]
             for d in ('ANNOTATIONS', 'Validation_Annotations')}
    assert noext == {
        f'{split}:{d}': sum(not re.search(r'<filename>[^<]*\.jpg</filename>', t)
                            for t in texts[d])
        for split, d in (('train', 'ANNOTATIONS'), ('val', 'Validation_Annotations'))}
    assert difficult == sum(t.count('<difficult>1') for v in texts.values() for t in v)
    assert sum(r.total for r in results if r.name == 'image missing') == 1800
    assert sum(sum(c.values()) for c in counts.values()) + difficult == 4189


def test_voc_folder_dataset_reads_parts_and_flags(tmp_path):
    """VOCFolderDataset: boxes as in the XMLs, interleaved parts, difficult ignored."""
    import cv2
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ann, img = tmp_path / 'ann', tmp_path / 'img'
    ann.mkdir()
    img.mkdir()
    for k in range(5):
        cv2.imwrite(str(img / f'a_{k}.jpg'), np.full((48, 64), 100, np.uint8))
        (ann / f'a_{k}.xml').write_text(VOC_XML.format(
            fn=f'a_{k}' if k == 1 else f'a_{k}.jpg', cls='rust', diff=int(k == 2)))

    def build(**kw):
        ds = DATASETS.build(dict(type='VOCFolderDataset', data_root=str(tmp_path),
                                 ann_file='ann', data_prefix=dict(img='img'),
                                 metainfo=dict(classes=('rust', )), pipeline=[], **kw))
        return [ds.get_data_info(i) for i in range(len(ds))]

    every = build()
    assert [os.path.basename(d['img_path']) for d in every] == [f'a_{k}.jpg' for k in range(5)]
    assert all(d['instances'][0]['bbox'] == [4.0, 4.0, 30.0, 20.0] for d in every)
    assert [d['instances'][0]['ignore_flag'] for d in every] == [0, 0, 1, 0, 0]
    assert [d['img_id'] for d in build(num_parts=2, parts=[1])] == [1, 3]
    # filter_empty_gt drops the image whose only box is difficult
    kept = build(filter_cfg=dict(filter_empty_gt=True))
    assert [d['img_id'] for d in kept] == [0, 1, 3, 4]
