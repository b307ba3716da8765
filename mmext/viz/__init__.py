"""mmext.viz."""
