"""mmext.anchors: box statistics, exact anchor coverage, ratio search."""
from .anchor_spec import AnchorSpec, anchor_spec_from_config
from .box_stats import box_statistics
from .config_writer import anchor_override, write_anchor_config
from .coverage import Coverage, anchor_coverage, max_iou_by_base
from .reference import mmdet_coverage
from .fit import RATIO_NOTE, FitInputs, fit_anchors, load_fit_inputs
from .search import SearchResult, search_anchor_shapes
from .summary import OBJECTIVES, coverage_summary
from .train_scale import (ResizeRule, ScaledBoxes, resize_rules_from_pipeline,
                          scale_boxes)

__all__ = [
    'AnchorSpec', 'anchor_spec_from_config', 'box_statistics', 'anchor_override',
    'write_anchor_config', 'Coverage', 'anchor_coverage', 'max_iou_by_base',
    'mmdet_coverage',
    'RATIO_NOTE', 'FitInputs', 'fit_anchors', 'load_fit_inputs', 'SearchResult',
    'search_anchor_shapes', 'OBJECTIVES', 'coverage_summary', 'ResizeRule',
    'ScaledBoxes', 'resize_rules_from_pipeline', 'scale_boxes'
]
