"""mmext.analysis."""
from .check_result import CheckResult, make_check  # noqa: F401,E402
from .dataset_check import check_annotations, check_table  # noqa: F401,E402
from .pipeline_check import check_pipelines  # noqa: F401,E402
from .class_efficiency import class_efficiency  # noqa: F401,E402
from .config_diff import diff_configs  # noqa: F401,E402
from .error_breakdown import error_breakdown  # noqa: F401,E402
from .predictions import Detections, load_detections  # noqa: F401,E402
from .threshold_sweep import images_lost, sweep_thresholds  # noqa: F401,E402
