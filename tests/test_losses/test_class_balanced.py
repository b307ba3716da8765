"""Class-balanced weights (Cui et al. 2019) and n_c from annotation files."""
import importlib.util
import json
import os

import pytest
from pycocotools.coco import COCO

from helpers import DEMO_CONFIG, ROOT
from mmext.losses import class_balanced_weights, class_counts
from mmext.utils import MMExtError, run_cli


def test_weights_closed_form_and_normalisation():
    counts, beta = [100, 10, 1], 0.9
    raw = [(1 - beta) / (1 - beta ** n) for n in counts]  # = 1 / effective number
    expected = [3 * r / sum(raw) for r in raw]
    got = class_balanced_weights(counts, beta=beta)
    assert got == pytest.approx(expected, rel=1e-12)
    assert sum(got) == pytest.approx(3.0)
    assert got[0] < got[1] < got[2]  # rarer class, larger weight


def test_limits_of_beta_and_background_entry():
    assert class_balanced_weights([5, 50, 500], beta=0.0) == pytest.approx([1.0, 1.0, 1.0])
    inv = [1 / 5, 1 / 50, 1 / 500]
    near_one = class_balanced_weights([5, 50, 500], beta=1 - 1e-9)
    assert near_one == pytest.approx([3 * v / sum(inv) for v in inv], rel=1e-5)
    with_bg = class_balanced_weights([5, 50], beta=0.99, background_weight=1.0)
    assert len(with_bg) == 3 and with_bg[-1] == 1.0 and sum(with_bg[:2]) == pytest.approx(2.0)


def test_bad_input_is_an_mmext_error():
    with pytest.raises(MMExtError, match='beta'):
        class_balanced_weights([1, 2], beta=1.0)
    with pytest.raises(MMExtError, match='>= 1 box'):
        class_balanced_weights([0, 2])


def test_counts_from_coco_file_and_config_match_pycocotools(tiny_demo_root):
    ann = os.path.join(tiny_demo_root, 'annotations', 'train_labeled.json')
    coco = COCO(ann)
    expected = {coco.cats[c]['name']: len(coco.getAnnIds(catIds=[c], iscrowd=False))
                for c in sorted(coco.cats)}
    assert class_counts(ann) == expected
    from mmengine.config import Config
    from mmext.utils.config import set_data_root
    cfg = set_data_root(Config.fromfile(DEMO_CONFIG), tiny_demo_root)
    assert class_counts(cfg) == expected


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_class_counts_cli(tiny_demo_root, tmp_path, capsys):
    ann = os.path.join(tiny_demo_root, 'annotations', 'train_labeled.json')
    out = tmp_path / 'cb.json'
    tool = _load_tool('class_counts')
    assert tool.main([ann, '--beta', '0.99', '--background-weight', '1.0',
                      '--json', str(out)]) == 0
    data = json.loads(out.read_text())
    counts = class_counts(ann)
    assert [r['n_c'] for r in data['classes'][:-1]] == list(counts.values())
    assert data['classes'][-1]['cls'] == '(background)'
    assert data['class_weight'] == pytest.approx(
        class_balanced_weights(list(counts.values()), 0.99, background_weight=1.0))
    stdout = capsys.readouterr().out
    assert 'Severe_Rust' in stdout and 'class_weight=' in stdout
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tool.main, [str(tmp_path / 'missing.json')])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_counts_from_real_voc_folder_match_the_xml(neu_det_root):
    """NEU-DET (VOC): n_c equals the non-difficult <object>s of the XML files."""
    import collections
    import glob
    import xml.etree.ElementTree as ET
    ann_dir = os.path.join(neu_det_root, 'ANNOTATIONS')
    expected = collections.Counter()
    for path in glob.glob(os.path.join(ann_dir, '*.xml')):
        for obj in ET.parse(path).getroot().iter('object'):
            difficult = obj.find('difficult')
            if difficult is None or difficult.text.strip() != '1':
                expected[obj.find('name').text.strip()] += 1
    got = class_counts(ann_dir, img_dir=os.path.join(neu_det_root, 'IMAGES'))
    assert got == dict(expected)
