"""mmext.viz."""
from .anchor_plots import plot_coverage_before_after, plot_ratio_histograms  # noqa: F401,E402
