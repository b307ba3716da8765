"""Evaluating predictions against ground truth: COCO matching, the score
threshold sweep, TIDE's error breakdown, the paired bootstrap, class
efficiency, teacher competence, and the readers of predictions and ground
truth they share. Nothing here is imported by ``import mmext.evaluation``
alone: each module is imported on use (some import mmdet)."""
