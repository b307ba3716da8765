"""mmext.data's YOLO reader against a hand-made Ultralytics-format dataset.

The ``ultralytics`` package does not run on this machine (see
``tests/yolo_dataset.py``: no CPU torchvision for torch 2.13), so the oracle
is Ultralytics' documented format and boxes computed by hand; image sizes are
checked against cv2's decode (which applies the EXIF orientation as
Ultralytics' ``exif_size`` assumes).
"""
import os

import cv2
import numpy as np
import pytest

from mmext.data import load_boxes, load_coco, load_yolo
from mmext.data.yolo import img2label_path, parse_yolo_source
from mmext.utils import MMExtError
from yolo_dataset import (NAMES, VAL_BOXES, VAL_SIZES, VAL_SKIPS,
                          make_yolo_dataset)


@pytest.fixture
def yolo(tmp_path):
    return make_yolo_dataset(tmp_path)


def _by_file(table):
    """{basename: (size, sorted [(label, x1, y1, x2, y2)])}."""
    out = {}
    for iid, name, w, h in zip(table.image_ids, table.file_names,
                               table.widths, table.heights):
        rows = np.flatnonzero(table.image_id == iid)
        boxes = sorted((int(table.label[r]), *table.bboxes()[r].tolist())
                       for r in rows)
        out[os.path.basename(name)] = ((w, h), boxes)
    return out


def test_val_split_equals_hand_computed_boxes(yolo):
    t = load_yolo(yolo['yaml'], 'val')
    assert t.class_names == NAMES
    assert t.source == f"{yolo['yaml']}:val"
    got = _by_file(t)
    assert set(got) == set(VAL_BOXES)  # broken.jpg is skipped
    for name, boxes in VAL_BOXES.items():
        size, have = got[name]
        assert size == VAL_SIZES[name], name
        assert len(have) == len(boxes), name
        np.testing.assert_allclose(np.array(have).reshape(-1, 5),
                                   np.array(sorted(boxes)).reshape(-1, 5),
                                   atol=1e-9, err_msg=name)
    assert not t.ignore.any()
    # file names are relative to the dataset root, in Ultralytics' sorted order
    assert t.file_names == ['images/val/0001.jpg', 'images/val/bg.jpg',
                            'images/val/empty.png', 'images/val/img_b.png',
                            'images/val/rot.jpg']


def test_val_split_equals_the_same_data_as_coco(yolo):
    y = load_boxes(yolo['yaml'] + ':val')
    c = load_coco(yolo['coco'])
    assert y.class_names == c.class_names
    assert _by_file(y).keys() == _by_file(c).keys()
    for name, (size, boxes) in _by_file(c).items():
        ysize, yboxes = _by_file(y)[name]
        assert ysize == size
        np.testing.assert_allclose(np.array(yboxes).reshape(-1, 5),
                                   np.array(boxes).reshape(-1, 5), atol=1e-9)
    assert y.class_counts() == c.class_counts()


def test_bad_lines_and_images_are_counted(yolo):
    t = load_yolo(yolo['yaml'], 'val')
    assert t.skip_counts() == VAL_SKIPS
    label = os.path.join(yolo['root'], 'labels', 'val', '0001.txt')
    recs = {(s.record, s.reason) for s in t.skipped if s.source == label}
    assert ('line 4', 'class index not in names') in recs
    assert ('line 9', 'normalised coordinate outside [0, 1]') in recs
    assert ('line 10', 'duplicate label line') in recs
    assert ('line 2', 'clipped to the image') in recs
    kept = {s.reason for s in t.skipped if s.kept}
    assert kept == {'clipped to the image', 'segment read as its box'}
    broken = [s for s in t.skipped if s.reason == 'unreadable image']
    assert broken[0].source.endswith('broken.jpg')


def test_image_ids_are_ultralytics_stems(yolo):
    t = load_yolo(yolo['yaml'], 'val')
    # '0001' -> 1 as Ultralytics' predictions.json writes it, others stems
    assert t.image_keys == [1, 'bg', 'empty', 'img_b', 'rot']
    np.testing.assert_array_equal(t.image_ids, np.arange(5))
    assert t.image_id_lookup()['img_b'] == 3
    assert t.file_name_lookup()['0001.jpg'] == 0


def test_all_integer_stems_are_the_image_ids(tmp_path):
    root = tmp_path / 'd'
    (root / 'images').mkdir(parents=True)
    (root / 'labels').mkdir()
    from PIL import Image
    for stem in ('7', '12'):
        Image.new('RGB', (20, 10)).save(root / 'images' / f'{stem}.png')
    (root / 'labels' / '7.txt').write_text('0 0.5 0.5 0.5 0.5\n')
    (tmp_path / 'd.yaml').write_text('path: d\ntrain: images\nval: images\n'
                                     'names: [a]\n')
    t = load_yolo(str(tmp_path / 'd.yaml'), 'val')
    assert t.image_keys is None
    assert sorted(t.image_ids.tolist()) == [7, 12]
    assert t.image_id.tolist() == [7]


def test_exif_orientation_gives_the_decoded_size(yolo):
    path = os.path.join(yolo['root'], 'images', 'val', 'rot.jpg')
    h, w = cv2.imread(path).shape[:2]  # cv2 applies EXIF orientation
    assert (w, h) == (40, 80)
    t = load_yolo(yolo['yaml'], 'val')
    k = t.file_names.index('images/val/rot.jpg')
    assert (t.widths[k], t.heights[k]) == (w, h)


def test_train_split_from_a_txt_list_is_the_default(yolo):
    t = load_boxes(yolo['yaml'])
    assert t.source.endswith(':train')
    assert t.file_names == ['images/train/t1.jpg', 'images/train/t2.jpg']
    assert t.class_counts() == {'rust': 2, 'chip': 1, 'scratch': 1}
    assert t.skip_counts() == {'image missing': 1}
    np.testing.assert_allclose(sorted(t.bboxes().tolist()),
                               [[4, 28, 12, 36], [6, 6, 14, 14],
                                [10, 10, 30, 30], [10, 15, 30, 25]])


def test_class_names_restrict_and_reorder(yolo):
    t = load_yolo(yolo['yaml'], 'val', class_names=['chip', 'rust'])
    assert t.class_counts() == {'chip': 2, 'rust': 3}
    assert t.skip_counts()['category not in the classes'] == 1


def test_label_path_rule():
    sep = os.sep
    img = sep.join(['', 'd', 'images', 'val', 'images', 'x.v1.jpg'])
    assert img2label_path(img) == sep.join(
        ['', 'd', 'images', 'val', 'labels', 'x.v1.txt'])
    assert img2label_path(sep.join(['', 'd', 'x.png'])) == sep.join(
        ['', 'd', 'x.txt'])


def test_source_syntax():
    assert parse_yolo_source('a/data.yaml') == ('a/data.yaml', None)
    assert parse_yolo_source('a/data.yml:test') == ('a/data.yml', 'test')
    assert parse_yolo_source('a/val.json') is None


def test_duplicate_stems_are_kept_and_counted(tmp_path):
    from PIL import Image
    for sub in ('a', 'b'):
        (tmp_path / 'images' / sub).mkdir(parents=True)
        (tmp_path / 'labels' / sub).mkdir(parents=True)
        Image.new('RGB', (10, 10)).save(tmp_path / 'images' / sub / 'x.jpg')
        (tmp_path / 'labels' / sub / 'x.txt').write_text('0 .5 .5 .5 .5\n')
    (tmp_path / 'data.yaml').write_text(
        'train: [images/a, images/b]\nval: images/a\nnames: [a]\n')
    t = load_yolo(str(tmp_path / 'data.yaml'), 'train')
    assert len(t) == 2 and t.num_images == 2
    assert t.skip_counts() == {'duplicate file stem (image_id ambiguous)': 2}
    assert t.image_keys == ['images/a/x.jpg', 'images/b/x.jpg']
    assert 'x' not in t.file_name_lookup()
    assert 'x.jpg' not in t.file_name_lookup()


def test_names_list_and_nc_only(tmp_path):
    (tmp_path / 'images').mkdir()
    from PIL import Image
    Image.new('RGB', (10, 10)).save(tmp_path / 'images' / 'a.jpg')
    (tmp_path / 'l.yaml').write_text('train: images\nval: images\n'
                                     'names: [x, y]\nnc: 2\n')
    assert load_yolo(str(tmp_path / 'l.yaml')).class_names == ('x', 'y')
    (tmp_path / 'n.yaml').write_text('train: images\nval: images\nnc: 3\n')
    assert load_yolo(str(tmp_path / 'n.yaml')).class_names == (
        'class_0', 'class_1', 'class_2')


@pytest.mark.parametrize('content, field', [
    (None, 'no such file'),
    ('names: [a\n  b: :', 'not YAML'),
    ('- just a list', 'not a YOLO data.yaml'),
    ('train: images\nval: images\n', "'names'"),
    ('train: images\nval: images\nnames: [a, b, a]\n', "'names'[2]"),
    ('train: images\nval: images\nnames: {0: a, 2: b}\n', "'names'"),
    ('train: images\nval: images\nnames: []\n', "'names'"),
    ('train: images\nval: images\nnames: [a]\nnc: 2\n', "'nc'"),
    ('train: images\nnames: [a]\n', "no 'val' split"),
    ('train: images\nval: nowhere\nnames: [a]\n', "'val': "),
    ('path: /no/such/root\ntrain: images\nval: images\nnames: [a]\n',
     "'path'"),
    ('train: images\nval: 3\nnames: [a]\n', "'val' must be"),
    ('train: images\nval: empty\nnames: [a]\n', "'val': no images"),
])
def test_bad_data_yaml_is_one_line_naming_file_and_field(tmp_path, content,
                                                         field):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'empty').mkdir()
    from PIL import Image
    Image.new('RGB', (10, 10)).save(tmp_path / 'images' / 'a.jpg')
    path = tmp_path / 'data.yaml'
    if content is not None:
        path.write_text(content)
    with pytest.raises(MMExtError) as exc:
        load_yolo(str(path), 'val')
    msg = str(exc.value)
    assert msg.startswith(str(path)) and field in msg and '\n' not in msg


def test_pose_lines_give_their_box(tmp_path):
    """kpt_shape [2, 3]: class cx cy w h + 2 x (x y visible) = 11 values."""
    from PIL import Image
    (tmp_path / 'images').mkdir()
    (tmp_path / 'labels').mkdir()
    Image.new('RGB', (100, 50)).save(tmp_path / 'images' / 'p.jpg')
    (tmp_path / 'labels' / 'p.txt').write_text(
        '0 0.5 0.5 0.2 0.4 0.45 0.4 2 0.55 0.6 1\n')
    (tmp_path / 'pose.yaml').write_text(
        'train: images\nval: images\nkpt_shape: [2, 3]\nnames: [person]\n')
    t = load_yolo(str(tmp_path / 'pose.yaml'))
    np.testing.assert_allclose(t.bboxes(), [[40, 15, 60, 35]])
    assert t.skipped == []
