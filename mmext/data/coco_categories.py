"""Category ids of a COCO json, mapped to the labels :func:`load_coco` gives.

COCO results files name classes by the ground truth's ``category_id``, which
a :class:`BoxTable` no longer carries (its labels are 0-based). This reads
the mapping the same way :func:`mmext.data.load_coco` builds its labels.
"""
from typing import Dict, Optional, Sequence

from ..utils import MMExtError, load_json
from .coco import coco_categories


def load_coco_category_labels(
        path: str,
        class_names: Optional[Sequence[str]] = None) -> Dict[int, int]:
    """Map a COCO json's ``category_id`` to the 0-based label of its BoxTable.

    Args:
        path: COCO json file (ground truth).
        class_names: The same class names given to :func:`load_coco`;
            default: every category, sorted by id.

    Returns:
        ``{category_id: label}`` for the categories that are in the classes.

    Raises:
        MMExtError: the file is missing or has no ``categories`` list.
    """
    data = load_json(path)
    if not isinstance(data, dict):
        raise MMExtError(f'{path}: not a COCO json object')
    cats = coco_categories(data, path)
    names = [n for _, n in cats] if class_names is None else list(
        class_names)
    name_to_label = {n: i for i, n in enumerate(names)}
    return {cid: name_to_label[n] for cid, n in cats if n in name_to_label}
