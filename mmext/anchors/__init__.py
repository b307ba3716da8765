"""mmext.anchors."""
