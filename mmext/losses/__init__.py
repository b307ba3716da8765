"""mmext.losses."""
