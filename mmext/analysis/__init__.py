"""mmext.analysis: the computations behind mmext's tools.

Names are imported on first use: several modules import mmdet and mmcv
(seconds), which tools that only read files should not pay for.
"""
import importlib

_LAZY = {
    'CheckResult': 'check_result', 'make_check': 'check_result',
    'check_annotations': 'dataset_check', 'check_table': 'dataset_check',
    'check_pipelines': 'pipeline_check',
    'class_efficiency': 'class_efficiency', 'diff_configs': 'config_diff',
    'error_breakdown': 'error_breakdown', 'Detections': 'predictions',
    'load_detections': 'predictions', 'images_lost': 'threshold_sweep',
    'sweep_thresholds': 'threshold_sweep',
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'.{_LAZY[name]}', __name__), name)
