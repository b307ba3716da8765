"""Which image a failed data pipeline could not read.

A corrupt image in a validation set stops ``runner.test()`` deep inside a
data-loader worker: the traceback names mmcv and OpenCV, not the file, and
it reads like a crash of the tool. This turns it back into what it is: a
data problem with a file name.
"""
import os
import re
from typing import Iterable, Optional

#: mmcv's ``LoadImageFromFile`` message for an image OpenCV cannot decode.
_FAILED_TO_LOAD = re.compile(r'failed to load image: (\S+)')
#: OpenCV's message for an empty buffer (a 0-byte file): no path in it.
_EMPTY_BUFFER = ('!buf.empty()', 'imdecode')


def _unreadable(path: str) -> bool:
    import mmcv
    try:
        if os.path.getsize(path) == 0:
            return True
        return mmcv.imread(path) is None
    except Exception:  # noqa: BLE001 - any decoder error: unreadable
        return True


def unreadable_image(error: BaseException,
                     image_paths: Iterable[str] = ()) -> Optional[str]:
    """The image behind a pipeline error, or None if it is not one.

    Args:
        error: The exception ``runner.test()`` (or a data loader) raised;
            from a worker process its message holds the worker's traceback.
        image_paths: The dataset's image paths, searched (in order, only
            when the message names no file) for the first unreadable one.

    Returns:
        The path of the unreadable image, or None when ``error`` is not an
        image-decoding failure.
    """
    text = str(error)
    # a worker's message quotes mmcv's source line (``{filename}``) before
    # the message itself: the last real path is the file
    paths = [p for p in _FAILED_TO_LOAD.findall(text) if '{' not in p]
    if paths:
        return paths[-1]
    if not all(part in text for part in _EMPTY_BUFFER):
        return None
    return next((p for p in image_paths if _unreadable(p)), None)
