"""Table, CSV and JSON helpers; they live in :mod:`mmext.utils.tables`
(hooks use them, and hooks import no analysis code). Kept here for the
tools and users that import them from this module."""
from ..utils.tables import (fmt, format_markdown, format_table,  # noqa: F401
                            skip_summary, write_csv, write_json)

__all__ = ['fmt', 'format_markdown', 'format_table', 'skip_summary',
           'write_csv', 'write_json']
