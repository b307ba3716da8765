"""Shared plumbing for the thin CLIs in ``tools/``."""
import argparse
import contextlib
import json
import math
import os
import sys
from typing import Callable, List, Optional

from .errors import MMExtError

try:  # 3-5x faster than the stdlib on large COCO files
    import orjson
except ImportError:  # pragma: no cover - a listed requirement
    orjson = None

#: Exit code of a CLI whose input was bad (missing file, malformed JSON, ...).
EXIT_BAD_INPUT = 2
#: Exit code of a CLI that crashed on a bug of its own (never 1: checkers
#: use 1 for "found problems").
EXIT_INTERNAL = 3


@contextlib.contextmanager
def _one_line_argparse_errors():
    """argparse prints its usage block on a bad option; make it one line.

    Every tool builds its own ``ArgumentParser``, so the error method is
    replaced on the class for the duration of ``main`` only.
    """
    original = argparse.ArgumentParser.error

    def error(parser, message):
        raise MMExtError(f'{message} (see {parser.prog} --help)')

    argparse.ArgumentParser.error = error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


def run_cli(main: Callable[[Optional[List[str]]], int],
            argv: Optional[List[str]] = None) -> None:
    """Run ``main(argv)``; bad input ends in one line and exit code 2.

    A crash that is not about the input ends in one line too, exit code 3
    (``MMEXT_DEBUG=1`` shows the traceback).

    Args:
        main: The tool's main function; returns the process exit code.
        argv: Arguments without the program name; ``None`` reads sys.argv.
    """
    prog = sys.argv[0].rsplit('/', 1)[-1]
    try:
        with _one_line_argparse_errors():
            code = main(argv)
    except SystemExit as exc:  # --help, or a tool's own sys.exit
        code = exc.code if isinstance(exc.code, int) else 0
    except MMExtError as exc:
        print(f'{prog}: error: {exc}', file=sys.stderr)
        code = EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        name = exc.filename or str(exc)
        print(f'{prog}: error: {name}: no such file', file=sys.stderr)
        code = EXIT_BAD_INPUT
    except json.JSONDecodeError as exc:
        print(f'{prog}: error: malformed JSON: {exc}', file=sys.stderr)
        code = EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader (``| head``) went away: stop quietly, like coreutils do
        sys.stderr.close()
        code = 0
    except KeyboardInterrupt:
        print(f'{prog}: interrupted', file=sys.stderr)
        code = 130
    except OSError as exc:  # permission denied, a file where a folder is ...
        name = exc.filename or ''
        print(f'{prog}: error: {name}: {exc.strerror or exc}', file=sys.stderr)
        code = EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get('MMEXT_DEBUG'):
            raise
        print(f'{prog}: internal error: {type(exc).__name__}: {exc} '
              '(a bug in mmext; MMEXT_DEBUG=1 shows the traceback)',
              file=sys.stderr)
        code = EXIT_INTERNAL
    if code not in (0, None):
        remove_empty_created_folders()
    sys.exit(code)


#: Folders :func:`output_dir` created in this process, deepest first.
_created_folders: List[str] = []


def remove_empty_created_folders() -> List[str]:
    """Remove the folders :func:`output_dir` created that are still empty.

    A tool that fails must not leave an empty output folder behind (the
    user would take it for a run that wrote nothing). Folders that existed
    before, or that hold anything, stay.

    Returns:
        The folders removed.
    """
    removed = []
    for folder in _created_folders:
        try:
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
                removed.append(folder)
        except OSError:
            continue
    _created_folders.clear()
    return removed


def _number(kind: type, text: str, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not {what}') from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'{text!r} is not {what}')
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _number(int, text, 'an integer >= 1')
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer >= 1')
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _number(int, text, 'an integer >= 0')
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer >= 0')
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _number(float, text, 'a finite number > 0')
    if value <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number > 0')
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _number(float, text, 'a finite number >= 0')
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number >= 0')
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (NaN and inf refused)."""
    return _number(float, text, 'a finite number')


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1] (scores, shares)."""
    value = _number(float, text, 'a number in [0, 1]')
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'{text!r} is not in [0, 1]')
    return value


def iou_threshold(text: str) -> float:
    """argparse type: an IoU threshold in (0, 1]."""
    value = _number(float, text, 'a number in (0, 1]')
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f'{text!r} is not in (0, 1]')
    return value


def output_dir(text: str) -> str:
    """argparse type: a folder that exists or is created now, before any
    long work (a regular file in the way is refused). A folder created here
    is removed again by :func:`run_cli` when the tool fails and leaves it
    empty."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f'{text}: exists and is not a folder')
    missing, parent = [], os.path.abspath(text)
    while not os.path.exists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    try:
        os.makedirs(text, exist_ok=True)
        _created_folders.extend(m for m in missing if m not in _created_folders)
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f'{text}: cannot create the folder ({exc.strerror})') from None
    if not os.access(text, os.W_OK):
        raise argparse.ArgumentTypeError(f'{text}: folder is not writable')
    return text


def output_file(text: str) -> str:
    """argparse type: a file path whose folder exists or is created now
    (an existing folder at the path itself is refused)."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f'{text}: is a folder, expected a '
                                         'file path')
    parent = os.path.dirname(text)
    if parent:
        output_dir(parent)
    return text


def load_json(path: str) -> object:
    """Read a JSON file, raising MMExtError that names the file on any problem.

    Args:
        path: Path of the JSON file.
    """
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        raise MMExtError(f'{path}: no such file') from None
    except IsADirectoryError:
        raise MMExtError(f'{path}: is a folder, not a JSON file') from None
    except OSError as exc:
        raise MMExtError(f'{path}: cannot read ({exc.strerror})') from None
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN/Infinity tokens or huge ints: the stdlib reads those
    try:
        return json.loads(raw.decode('utf-8'))
    except json.JSONDecodeError as exc:
        raise MMExtError(f'{path}: malformed JSON ({exc.msg} at line '
                         f'{exc.lineno} column {exc.colno})') from None
    except UnicodeDecodeError:
        raise MMExtError(f'{path}: not a UTF-8 text file') from None
    except RecursionError:
        raise MMExtError(f'{path}: JSON nested too deeply') from None


def read_jsonl(path: str, with_lines: bool = False) -> list:
    """Read a JSON-lines file of objects (blank lines skipped).

    Args:
        path: The file.
        with_lines: Return ``(line number, object)`` pairs.

    Raises:
        MMExtError: the file cannot be read, or a line is not a JSON object
            (the message names the file and line).
    """
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, 'strerror', None) or type(exc).__name__
        raise MMExtError(f'{path}: cannot read ({reason})') from None
    records = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MMExtError(f'{path}:{no}: not JSON ({exc.msg})') from None
        if not isinstance(rec, dict):
            raise MMExtError(f'{path}:{no}: not a JSON object')
        records.append((no, rec) if with_lines else rec)
    return records
