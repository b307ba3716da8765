"""mmext.hooks."""
from .safe_hook import SafeHook  # noqa: F401
from .loss_stability import LossStabilityHook  # noqa: F401
from .class_ap_tracker import ClassAPTrackerHook  # noqa: F401
from .anchor_match_stats import AnchorMatchStatsHook  # noqa: F401
from .pseudo_label_stats import PseudoLabelStatsHook  # noqa: F401
from .pseudo_threshold import PseudoThresholdHook  # noqa: F401
from .teacher_competence import TeacherCompetenceHook  # noqa: F401
from .supervised_burn_in import SupervisedBurnInHook  # noqa: F401
