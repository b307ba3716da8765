"""mmext.analysis."""
