"""mmext.models."""
