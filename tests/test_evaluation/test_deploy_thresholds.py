"""Per-class deployment thresholds: the table and the filter."""
import csv
import json

import numpy as np

from mmext.evaluation.deploy_thresholds import (keep_by_class_threshold,
                                                write_class_thresholds)


def test_filter_equals_a_loop():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    scores = rng.random(200)
    thresholds = [0.3, 0.05, 0.8]
    keep = keep_by_class_threshold(labels, scores, thresholds)
    assert keep.tolist() == [s >= thresholds[c]
                             for c, s in zip(labels, scores)]


def test_table_has_every_class_in_index_order(tmp_path):
    paths = write_class_thresholds({'chip': 0.15, 'rust': 0.3},
                                   ['rust', 'scratch', 'chip'],
                                   str(tmp_path / 'deploy'))
    with open(paths[0]) as f:
        rows = list(csv.DictReader(f))
    assert [(r['index'], r['class'], float(r['threshold'])) for r in rows] \
        == [('0', 'rust', 0.3), ('1', 'scratch', 0.0), ('2', 'chip', 0.15)]
    usage = json.load(open(paths[1]))['usage']
    assert 'no higher than 0' in usage  # scratch keeps every box
