"""mmext.hooks."""
