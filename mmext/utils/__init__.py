"""Small shared helpers: errors, CLI plumbing, config access, checkpoints."""
from .cli import EXIT_BAD_INPUT, load_json, read_jsonl, run_cli
from .errors import MMExtError

__all__ = ['MMExtError', 'EXIT_BAD_INPUT', 'load_json', 'read_jsonl', 'run_cli']
