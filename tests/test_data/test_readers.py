"""mmext.data readers against hand-made files, mmdet's CocoDataset and real NEU-DET."""
import json
import os

import numpy as np
import pytest

from mmext.data import load_boxes, load_coco, load_voc
from mmext.utils import MMExtError


def _write(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)
    return str(path)


def _coco(anns, images=None):
    images = images or [dict(id=1, file_name='a.jpg', width=100, height=50)]
    return dict(images=images, annotations=anns,
                categories=[dict(id=3, name='rust'), dict(id=7, name='chip')])


def test_coco_good_boxes_and_crowd(tmp_path):
    anns = [
        dict(id=1, image_id=1, category_id=7, bbox=[10, 5, 20, 10], iscrowd=0),
        dict(id=2, image_id=1, category_id=3, bbox=[0, 0, 30, 40], iscrowd=1),
    ]
    t = load_coco(_write(tmp_path / 'a.json', _coco(anns)))
    assert t.class_names == ('rust', 'chip')
    np.testing.assert_array_equal(t.label, [1, 0])
    np.testing.assert_allclose(t.bboxes(), [[10, 5, 30, 15], [0, 0, 30, 40]])
    np.testing.assert_array_equal(t.ignore, [False, True])
    np.testing.assert_allclose(t.ratio_h_over_w, [10 / 20, 40 / 30])
    assert t.class_counts() == {'rust': 0, 'chip': 1}
    assert t.skipped == []


def test_coco_bad_records_are_counted_not_kept(tmp_path):
    images = [dict(id=1, file_name='a.jpg', width=100, height=50),
              dict(id=2, file_name='b.jpg')]
    anns = [
        dict(id=1, image_id=1, category_id=7, bbox=[10, 5, 0, 10]),
        dict(id=2, image_id=1, category_id=7, bbox=[10, 5, float('nan'), 10]),
        dict(id=3, image_id=1, category_id=99, bbox=[10, 5, 5, 5]),
        dict(id=4, image_id=1, category_id=7, bbox=[200, 5, 5, 5]),
        dict(id=5, image_id=2, category_id=7, bbox=[1, 1, 5, 5]),
        dict(id=6, image_id=1, category_id=7, bbox=[90, 40, 20, 20]),
        dict(id=7, image_id=42, category_id=7, bbox=[1, 1, 5, 5]),
    ]
    t = load_coco(_write(tmp_path / 'a.json', _coco(anns, images)))
    assert len(t) == 1  # only the clipped box survives
    np.testing.assert_allclose(t.bboxes(), [[90, 40, 100, 50]])
    counts = t.skip_counts()
    assert counts == {
        'image without a size': 2, 'width or height <= 0': 1,
        'non-finite coordinate': 1, 'unknown category id': 1,
        'box outside the image': 1, 'clipped to the image': 1,
        'unknown image id': 1}


def test_coco_agrees_with_mmdet_cocodataset(tiny_demo_root):
    from mmdet.datasets import CocoDataset
    ann = os.path.join(tiny_demo_root, 'annotations', 'train_labeled.json')
    ds = CocoDataset(ann_file=ann, data_prefix=dict(img=''), pipeline=[],
                     test_mode=True, metainfo=dict(classes=(
                         'Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear', 'Scratched')))
    mm = sorted((d['img_id'], i['bbox_label'], *i['bbox'])
                for d in ds for i in d['instances'])
    t = load_coco(ann)
    ours = sorted(zip(t.image_id, t.label, t.x1, t.y1, t.x2, t.y2))
    np.testing.assert_allclose(np.array(ours, float), np.array(mm, float))


@pytest.mark.parametrize('content, problem', [
    ('{not json', 'malformed JSON'),
    ('[1, 2]', 'not a COCO json object'),
    ('{"images": []}', "no 'categories'"),
])
def test_coco_bad_file_names_file_and_problem(tmp_path, content, problem):
    path = tmp_path / 'bad.json'
    path.write_text(content)
    with pytest.raises(MMExtError, match=problem) as err:
        load_coco(str(path))
    assert str(path) in str(err.value)


def test_missing_source(tmp_path):
    with pytest.raises(MMExtError, match='no such file'):
        load_boxes(str(tmp_path / 'nope.json'))


def test_voc_quirks(tmp_path):
    ann, img = tmp_path / 'ann', tmp_path / 'img'
    ann.mkdir(), img.mkdir()
    (img / 'x_1.jpg').write_bytes(b'')
    (ann / 'x_1.xml').write_text(
        '<annotation><filename>x_1</filename><size><width>200</width>'
        '<height>100</height><depth>1</depth></size>'
        '<object><name>scratch</name><difficult>1</difficult><bndbox><xmin>5</xmin>'
        '<ymin>6</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>'
        '<object><name>pit</name><difficult>0</difficult><bndbox><xmin>5</xmin>'
        '<ymin>6</ymin><xmax>5</xmax><ymax>60</ymax></bndbox></object>'
        '</annotation>')
    (ann / 'broken.xml').write_text('<annotation><filename>')
    t = load_voc(str(ann), str(img))
    assert t.file_names == ['x_1.jpg']
    assert len(t) == 1 and t.ignore.tolist() == [True]
    counts = t.skip_counts()
    assert counts['filename without extension'] == 1
    assert counts['width or height <= 0'] == 1
    assert sum('malformed XML' in r for r in counts) == 1


def test_neu_det_matches_its_readme(neu_det_root):
    t = load_boxes(os.path.join(neu_det_root, 'ANNOTATIONS'),
                   img_dir=os.path.join(neu_det_root, 'IMAGES'))
    v = load_boxes(os.path.join(neu_det_root, 'Validation_Annotations'),
                   img_dir=os.path.join(neu_det_root, 'Validation_Images'))
    assert t.num_images + v.num_images == 1800
    assert len(t) + len(v) == 4189
    # the README's 170 are in ANNOTATIONS/; Validation_Annotations/ adds 4
    assert t.skip_counts()['filename without extension'] == 170
    assert int(t.ignore.sum() + v.ignore.sum()) == 81
    scratches = t.ratio_h_over_w[t.label == t.class_names.index('scratches')]
    assert scratches.max() > 15 and scratches.min() < 1 / 12
    crazing = t.ratio_h_over_w[t.label == t.class_names.index('crazing')]
    assert abs(np.median(crazing) - 0.56) < 0.02
    # every resolved file name exists on disk
    assert all(os.path.isfile(os.path.join(neu_det_root, 'IMAGES', f))
               for f in t.file_names)


def test_image_sizes_vectorised_equal_the_per_value_rule():
    """The one-pass size conversion agrees with the per-value rule on any
    mix of numbers, bools, strings, None, NaN/inf and huge ints."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mmext.data.coco import _size, _sizes
    value = st.one_of(st.integers(-10, 10**6), st.integers(10**300, 10**400),
                      st.floats(allow_nan=True, allow_infinity=True),
                      st.booleans(), st.none(), st.text(max_size=3))
    numbers = st.one_of(st.integers(-10, 10**6),
                        st.floats(allow_nan=True, allow_infinity=True))

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.lists(value, max_size=8), st.lists(numbers, max_size=8)))
    def check(values):
        expected = np.array([_size(v) for v in values], dtype=np.float64)
        np.testing.assert_array_equal(_sizes(values), expected)

    check()
