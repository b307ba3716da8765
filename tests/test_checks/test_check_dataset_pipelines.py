"""Pipeline checks run the real Soft Teacher pipelines and find planted faults."""
import cv2
import numpy as np
import pytest
from helpers import tiny_semi_config
from mmdet.datasets.transforms import Rotate
from mmdet.structures.bbox import HorizontalBoxes

from mmext.checks.homography_check import box_errors, image_agreement, image_mismatch
from mmext.checks.pipeline_check import check_pipelines

from check_dataset_faults import insert_student, insert_sup

SUP = 'train:train_labeled.json/sup'
STUDENT = 'train:train_unlabeled.json/unsup_student'
PAIR = 'train:train_unlabeled.json/teacher->student'


def _run(cfg, n=3):
    results, drawn = check_pipelines(cfg, num_samples=n, seed=0, num_drawn=1)
    return {(r.scope, r.name): r for r in results}, drawn


@pytest.fixture
def cfg(tiny_demo_root, tmp_path):
    return tiny_semi_config(tiny_demo_root, str(tmp_path / 'work'))


def test_clean_semi_pipeline_passes_every_branch(cfg):
    found, drawn = _run(cfg, n=4)
    bad = [k for k, r in found.items() if r.status in ('warn', 'fail')]
    assert not bad, [found[k].examples for k in bad]
    scopes = {s for s, _ in found}
    assert {SUP, STUDENT, 'train:train_unlabeled.json/unsup_teacher', PAIR} <= scopes
    assert found[(PAIR, 'teacher/student boxes related by their homographies')].total == 4
    # the drawn grid: loaded image + sup; loaded + teacher + student
    assert [len(d.panels) for d in drawn] == [2, 3]


# (planted transform, (scope, check) that must fail on every sample, text
# the first example must contain, (scope, check) that must still pass)
PLANTED = [
    ('FlipWithoutHomography', insert_sup, (SUP, 'boxes follow the recorded homography'),
     'FlipWithoutHomography', (STUDENT, 'boxes follow the recorded homography')),
    ('FlipWithoutHomography', insert_sup,
     (SUP, 'image content follows the recorded homography'), 'horizontal flip',
     (SUP, 'image dtype/range matches the data preprocessor')),
    ('FlipWithoutHomography', insert_student,
     (PAIR, 'teacher/student boxes related by their homographies'), 'H_student',
     (SUP, 'boxes follow the recorded homography')),
    ('FlipWithoutHomography', insert_student,
     (PAIR, 'teacher/student images related by their homographies'), 'flip',
     (SUP, 'image content follows the recorded homography')),
    ('ToFloatZeroOne', insert_sup, (SUP, 'image dtype/range matches the data preprocessor'),
     'float32 image in [0', (STUDENT, 'image dtype/range matches the data preprocessor')),
    ('DropFirstBox', insert_sup, (SUP, 'box count changed outside a filtering transform'),
     'DropFirstBox', (SUP, 'boxes follow the recorded homography')),
    ('ShiftBoxesOut', insert_sup, (SUP, 'boxes inside the output image'), 'outside',
     (SUP, 'box count changed outside a filtering transform')),
    # before MultiBranch: the labeled pipeline's trunk ('main')
    ('RaiseInPipeline', insert_sup, ('train:train_labeled.json/main', 'pipeline error'),
     'RaiseInPipeline: ValueError: planted failure',
     (STUDENT, 'boxes follow the recorded homography')),
]


@pytest.fixture(scope='module')
def planted_runs(tiny_demo_root, tmp_path_factory):
    """One pipeline check per (transform, place), shared by the cases."""
    runs = {}
    for name, insert, *_ in PLANTED:
        key = (name, insert.__name__)
        if key not in runs:
            cfg = tiny_semi_config(tiny_demo_root, str(tmp_path_factory.mktemp('w')))
            insert(cfg, dict(type=name))
            runs[key] = _run(cfg)[0]
    return runs


@pytest.mark.parametrize('name,insert,failing,text,passing', PLANTED,
                         ids=[f'{p[0]}-{p[2][1]}' for p in PLANTED])
def test_planted_pipeline_fault_is_found(planted_runs, name, insert, failing, text,
                                         passing):
    found = planted_runs[(name, insert.__name__)]
    assert found[failing].status == 'fail' and found[failing].count == 3
    assert text in found[failing].examples[0]
    assert found[passing].status == 'pass'


def test_box_errors_follow_mmdet_rotate():
    """mmdet's own Rotate moves boxes exactly as its recorded matrix says."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[60, 50, 80, 70], [70, 40, 90, 55]], np.float32)
    results = dict(img=img, img_shape=img.shape[:2],
                   gt_bboxes=HorizontalBoxes(boxes.copy()),
                   gt_bboxes_labels=np.array([0, 1]),
                   gt_ignore_flags=np.zeros(2, bool))
    out = Rotate(prob=1.0, level=5, min_mag=20.0, max_mag=20.0)(results)
    matrix = out['homography_matrix']
    after = out['gt_bboxes'].tensor.numpy()
    errs = box_errors(boxes, np.array([0, 1]), after, np.array([0, 1]), matrix, (120, 160))
    assert len(errs) == 2 and errs.max() < 1e-3
    wrong = box_errors(boxes, np.array([0, 1]), after, np.array([0, 1]), np.eye(3), (120, 160))
    assert wrong.min() > 2.0


def test_image_agreement_prefers_the_true_matrix():
    rng = np.random.default_rng(1)
    src = cv2.GaussianBlur(rng.integers(0, 255, (96, 128), dtype=np.uint8), (5, 5), 0)
    matrix = np.array([[-1.5, 0, 192], [0, 1.5, 0], [0, 0, 1]])  # flip + 1.5x
    dst = cv2.warpPerspective(src, matrix, (192, 144))
    assert image_agreement(src, dst, matrix) > 0.7 > 0.3 > image_agreement(
        src, dst, np.diag([1.5, 1.5, 1.0]))
    assert image_mismatch(src, dst, matrix) == ''
    no_flip = np.diag([1.5, 1.5, 1.0])
    assert 'horizontal flip' in image_mismatch(src, dst, no_flip)
