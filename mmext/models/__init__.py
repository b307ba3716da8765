"""mmext.models: detector subclasses, only where a hook cannot reach."""
from .per_class_soft_teacher import (PerClassPseudoThrMixin,  # noqa: F401
                                     PerClassSoftTeacher)
from .pseudo_thresholds import PseudoThresholds  # noqa: F401
