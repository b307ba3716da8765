"""mmext.analysis."""
from .check_result import CheckResult, make_check  # noqa: F401,E402
from .dataset_check import check_annotations, check_table  # noqa: F401,E402
from .pipeline_check import check_pipelines  # noqa: F401,E402
