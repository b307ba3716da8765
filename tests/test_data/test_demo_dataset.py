"""The synthetic demo dataset: deterministic, the user's shares and shapes."""
import hashlib
import os

import numpy as np

from mmext.data import load_boxes
from mmext.data.demo_dataset import CLASS_NAMES, DEMO_CLASSES, make_demo_dataset


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            with open(os.path.join(dirpath, f), 'rb') as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_differs(tmp_path):
    kw = dict(num_labeled=3, num_unlabeled=3, num_val=2, image_size=64)
    make_demo_dataset(str(tmp_path / 'a'), seed=5, **kw)
    make_demo_dataset(str(tmp_path / 'b'), seed=5, **kw)
    make_demo_dataset(str(tmp_path / 'c'), seed=6, **kw)
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b')
    assert _digest(tmp_path / 'a') != _digest(tmp_path / 'c')


def test_splits_and_hidden_ground_truth(tiny_demo_root):
    ann = os.path.join(tiny_demo_root, 'annotations')
    unl = load_boxes(os.path.join(ann, 'train_unlabeled.json'))
    gt = load_boxes(os.path.join(ann, 'train_unlabeled_gt.json'))
    assert len(unl) == 0 and unl.num_images == 12
    assert len(gt) > 0 and list(gt.image_ids) == list(unl.image_ids)
    lab = load_boxes(os.path.join(ann, 'train_labeled.json'))
    assert set(lab.image_ids).isdisjoint(gt.image_ids)
    assert lab.class_names == CLASS_NAMES


def test_shares_and_narrow_classes(tmp_path):
    files = make_demo_dataset(str(tmp_path), seed=0, num_labeled=400,
                              num_unlabeled=1, num_val=1, image_size=128)
    t = load_boxes(files['train_labeled'])
    counts = np.array(list(t.class_counts().values()), float)
    shares = counts / counts.sum()
    expected = np.array([c.share for c in DEMO_CLASSES])
    assert np.abs(shares - expected).max() < 0.05
    for name, med, p25, p75 in (('Severe_Rust', 0.45, 0.34, 0.61),
                                ('Chipped', 0.51, 0.39, 0.65)):
        r = t.ratio_h_over_w[t.label == CLASS_NAMES.index(name)]
        q25, q50, q75 = np.percentile(r, [25, 50, 75])
        assert abs(q50 - med) < 0.07 and abs(q25 - p25) < 0.08 and abs(q75 - p75) < 0.1
