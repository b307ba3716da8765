"""The NEU-DET config: VOCFolderDataset reads the real folders; its pipelines pass."""
import os
import re

from helpers import ROOT
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmext.checks.pipeline_check import check_pipelines
from mmext.utils.config import set_data_root

NEU_CONFIG = os.path.join(ROOT, 'configs/neu_det/soft-teacher_faster-rcnn_tiny_neu-det.py')


def test_voc_folder_split_covers_every_image_once(neu_det_root):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    cfg = set_data_root(Config.fromfile(NEU_CONFIG), neu_det_root)
    parts = cfg.train_dataloader.dataset.datasets
    for d in parts:
        d.filter_cfg = None  # the split itself, before empty images are dropped
    labeled, unlabeled = ([ds.get_data_info(i) for i in range(len(ds))]
                          for ds in (DATASETS.build(d) for d in parts))
    lab = {d['img_path'] for d in labeled}
    unl = {d['img_path'] for d in unlabeled}
    ann_dir = os.path.join(neu_det_root, 'ANNOTATIONS')
    xmls = sorted(os.listdir(ann_dir))
    assert not lab & unl and len(lab) + len(unl) == len(xmls)
    assert all(os.path.isfile(p) for p in lab | unl)
    # every 10th XML (sorted) is labeled, boxes as many as <object> tags
    expected = {os.path.splitext(x)[0] for x in xmls[::10]}
    assert {os.path.splitext(os.path.basename(p))[0] for p in lab} == expected
    n_obj = sum(open(os.path.join(ann_dir, x)).read().count('<object>') for x in xmls[::10])
    assert sum(len(d['instances']) for d in labeled) == n_obj
    difficult = sum(len(re.findall(r'<difficult>1', open(os.path.join(ann_dir, x)).read()))
                    for x in xmls[::10])
    assert sum(i['ignore_flag'] for d in labeled
               for i in d['instances']) == difficult


def test_neu_det_pipelines_pass(neu_det_root):
    cfg = set_data_root(Config.fromfile(NEU_CONFIG), neu_det_root)
    results, drawn = check_pipelines(cfg, num_samples=2, seed=0, num_drawn=1)
    assert [r for r in results if r.status == 'fail'] == []
    # unlabeled NEU images carry their (hidden) boxes into both views
    pair = [r for r in results if r.scope.endswith('teacher->student')]
    assert pair and all(r.total == 2 for r in pair)
    assert len(drawn) == 3
