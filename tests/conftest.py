"""Shared fixtures: a tiny generated demo dataset and a tiny Soft Teacher config."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from helpers import DEMO_CONFIG, NEU_DET, tiny_semi_config  # noqa: E402,F401


@pytest.fixture(scope='session')
def tiny_demo_root(tmp_path_factory):
    """A small demo dataset (12 labeled, 12 unlabeled, 8 val images, 96 px)."""
    from mmext.data.demo_dataset import make_demo_dataset
    root = str(tmp_path_factory.mktemp('demo_data'))
    make_demo_dataset(root, seed=1, num_labeled=12, num_unlabeled=12,
                      num_val=8, image_size=96)
    return root


@pytest.fixture
def neu_det_root():
    """The real NEU-DET data beside the checkout; skips when it is absent."""
    if not os.path.isdir(NEU_DET):
        pytest.skip(f'real data not found at {NEU_DET} (only CI and the '
                    'developers have ../shared)')
    return NEU_DET
from analysis_fixtures import demo_eval_run  # noqa: E402,F401
