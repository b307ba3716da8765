"""One-change ablations: BASE plus one group of NEW's changes per config.

:func:`~mmext.experiments.config_diff.diff_configs` puts every changed key of
BASE -> NEW in a group (optimizer/LR, loss, anchors, augmentation, data,
semi-supervised thresholds, other). :func:`write_ablation` writes, per group,
a config that ``_base_``s BASE and overrides only that group's keys, plus a
manifest with the commands that train each (tools/train.py, torchrun and
mmdet's dist_train.sh / slurm_train.sh). Launching stays with the user.

How an override is written so that mmengine's merge gives exactly BASE with
the group's values: a changed leaf is written as itself; a change inside a
list (a pipeline transform) writes the whole list (lists replace); a dict
that replaces a scalar, or a dict that loses a key, is written whole with
``_delete_=True``. mmengine bookkeeping keys (``_scope_``) are not changes.
A place that holds a copy of a changed top-level variable
(``train_dataloader.dataset.pipeline`` of ``train_pipeline``) is written as
well: mmengine resolved that reference in BASE's own file.
"""
import copy
import json
import os
import os.path as osp
import pprint
import re
from typing import Any, Dict, List, Sequence, Tuple

from mmext.utils import MMExtError
from mmext.utils.config import load_config
from mmext.experiments.config_diff import (BOOKKEEPING, GROUPS, Change, diff_configs,
                          expand_aliases)


def _path(key: str) -> List[Any]:
    return [int(p) if p.isdigit() else p for p in key.split('.')]


def _raw_path(change: Change) -> List[Any]:
    """Where the change is in NEW (in BASE for a removed key), with list
    indexes: ``change.key`` is the readable ``train_pipeline[RandomFlip]``."""
    return _path(change.path_b or change.path_a or change.key)


def _moved_in_list(change: Change, i: int) -> bool:
    """True when the item at list depth ``i`` is not at the same index in
    BASE and NEW (inserted, removed, or shifted by an insertion)."""
    if change.path_a is None or change.path_b is None:
        return True
    return _path(change.path_a)[:i + 1] != _path(change.path_b)[:i + 1]


def _get(obj: Any, path: Sequence[Any]) -> Tuple[bool, Any]:
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and p < len(obj):
            obj = obj[p]
        else:
            return False, None
    return True, obj


def _write_path(change: Change, base: dict, target: dict) -> Tuple[List[Any],
                                                                    bool]:
    """Where to write a change, and whether that dict needs ``_delete_``."""
    path = _raw_path(change)
    # stop before the first list index: lists are written whole
    for i, p in enumerate(path):
        if isinstance(p, int):
            return path[:i], False
    found, _ = _get(target, path)
    if not found:  # removed: rewrite the parent dict without it
        return path[:-1], True
    # a dict where BASE has a scalar (float -> policy dict): the top of it
    for i in range(1, len(path) + 1):
        ok_b, vb = _get(base, path[:i])
        if not ok_b or not isinstance(vb, dict):
            ok_t, vt = _get(target, path[:i])
            return path[:i], bool(ok_b and isinstance(vt, dict))
    return path, False


def _set(obj: Any, path: Sequence[Any], value: Any) -> None:
    """Set ``obj[path] = value``, creating missing dicts on the way."""
    for i, p in enumerate(path[:-1]):
        nxt = obj[p] if (isinstance(obj, dict) and p in obj) or (
            isinstance(obj, list) and p < len(obj)) else None
        if not isinstance(nxt, (dict, list)):
            nxt = [] if isinstance(path[i + 1], int) else {}
            if isinstance(obj, list) and p >= len(obj):
                obj.append(nxt)
            else:
                obj[p] = nxt
        obj = nxt
    last = path[-1]
    if isinstance(obj, list) and last >= len(obj):
        obj.append(value)
    else:
        obj[last] = value


def _apply(base: dict, new: dict, changes: Sequence[Change]) -> dict:
    """BASE with NEW's value at each changed key (leaf by leaf)."""
    out = copy.deepcopy(base)
    for c in changes:
        path = _raw_path(c)
        # a list that grew or shrank (a transform inserted or removed), or
        # whose items moved, is taken whole from NEW: its items cannot be
        # matched by index
        for i, p in enumerate(path):
            if isinstance(p, int):
                _, a_list = _get(base, path[:i])
                _, b_list = _get(new, path[:i])
                if isinstance(a_list, list) and isinstance(b_list, list) \
                        and (len(a_list) != len(b_list)
                             or _moved_in_list(c, i)):
                    path = path[:i]
                break
        found, value = _get(new, path)
        if found:
            _set(out, path, copy.deepcopy(value))
            continue
        ok, parent = _get(out, path[:-1])
        if ok and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif ok and isinstance(parent, list) and path[-1] < len(parent):
            parent.pop(path[-1])
    return out


def group_override(base: dict, new: dict,
                   changes: Sequence[Change]) -> dict:
    """The nested override that turns BASE into BASE + these changes."""
    target = _apply(base, new, changes)
    writes: Dict[Tuple, bool] = {}
    for c in changes:
        path, delete = _write_path(c, base, target)
        writes[tuple(path)] = writes.get(tuple(path), False) or delete
    # a path inside another written path is covered by it
    keep = {p: d for p, d in writes.items()
            if not any(len(q) < len(p) and p[:len(q)] == q for q in writes)}
    override: dict = {}
    for path, delete in sorted(keep.items(), key=lambda kv: len(kv[0])):
        _, value = _get(target, list(path))
        value = copy.deepcopy(value)
        if delete and isinstance(value, dict):
            value = dict(_delete_=True, **value)
        node = override
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = value
    return override


def _slug(group: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', group.lower()).strip('-')


def commands(config: str, work_dir: str, gpus: int = 2) -> Dict[str, str]:
    """How to train one config: locally, torchrun, mmdet's dist/slurm."""
    return {
        'train': f'python tools/train.py {config} --work-dir {work_dir}',
        'torchrun': (f'torchrun --nproc_per_node={gpus} tools/train.py '
                     f'{config} --launcher pytorch --work-dir {work_dir}'),
        'mmdet_dist': (f'bash $MMDET/tools/dist_train.sh {config} {gpus} '
                       f'--work-dir {work_dir}'),
        'mmdet_slurm': (f'GPUS={gpus} bash $MMDET/tools/slurm_train.sh '
                        f'$PARTITION {osp.basename(work_dir)} {config} '
                        f'{work_dir}'),
    }


def write_ablation(base_path: str, new_path: str, out_dir: str,
                   work_root: str = 'work_dirs/ablate',
                   gpus: int = 2) -> dict:
    """Write one config per changed group, NEW, and a manifest.

    Args:
        base_path: The baseline config.
        new_path: The config with all changes.
        out_dir: Folder for the configs and ``manifest.json`` /
            ``train_all.sh``.
        work_root: Where the manifest's commands put each run.
        gpus: Processes in the torchrun / dist / slurm commands.

    Returns:
        The manifest: ``base``, ``new``, ``arms`` (name, group, config,
        keys changed, commands), ``compare`` (the compare_runs command).

    Raises:
        MMExtError: a config does not load, the two are identical, or NEW
            lacks a top-level key of BASE.
    """
    diff = diff_configs(base_path, new_path)
    changes = [c for c in diff.changes if not BOOKKEEPING.search(c.key)]
    # a copy of a changed variable (`pipeline=train_pipeline`) is written
    # too: mmengine resolved it in BASE, an override of the variable alone
    # would not reach it
    written = expand_aliases(changes, diff.aliases)
    if not changes:
        raise MMExtError(f'{new_path}: no change against {base_path}')
    base = load_config(base_path).to_dict()
    new = load_config(new_path).to_dict()
    removed = sorted({_raw_path(c)[0] for c in written if _raw_path(c)}
                     & (set(base) - set(new)))
    if removed:
        # a config that _base_-s BASE inherits every top-level key
        raise MMExtError(
            f'{new_path}: has no {", ".join(map(repr, removed[:4]))}'
            f'{" ..." if len(removed) > 4 else ""} of {base_path}; a config '
            'built on BASE cannot remove a top-level key (ablate configs '
            'of one detector)')
    os.makedirs(out_dir, exist_ok=True)
    arms = []
    for group in GROUPS:
        group_changes = [c for c in changes if c.group == group]
        if not group_changes:
            continue
        name = f'only-{_slug(group)}'
        path = osp.join(out_dir, f'{name}.py')
        override = group_override(
            base, new, [c for c in written if c.group == group])
        rel = osp.relpath(osp.abspath(base_path), osp.dirname(
            osp.abspath(path)))
        lines = [f'# {base_path} with only its "{group}" changes from '
                 f'{new_path}:']
        lines += [f'#   {c.key}: {c.before!r} -> {c.after!r}'
                  for c in group_changes]
        lines += [f'_base_ = [{rel!r}]', '']
        for key, value in override.items():
            lines.append(f'{key} = ' + pprint.pformat(value, width=88,
                                                      sort_dicts=False))
        with open(path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')
        arms.append({'name': name, 'group': group, 'config': path,
                     'keys': [c.key for c in group_changes]})
    arms.insert(0, {'name': 'base', 'group': None, 'config': base_path,
                    'keys': []})
    arms.append({'name': 'new', 'group': 'all', 'config': new_path,
                 'keys': [c.key for c in changes]})
    for arm in arms:
        arm['work_dir'] = osp.join(work_root, arm['name'])
        arm['commands'] = commands(arm['config'], arm['work_dir'], gpus)
    manifest = {'base': base_path, 'new': new_path, 'arms': arms,
                'compare': 'python tools/compare_runs.py ' + ' '.join(
                    f'{a["name"]}={a["work_dir"]}' for a in arms)}
    with open(osp.join(out_dir, 'manifest.json'), 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=1)
    with open(osp.join(out_dir, 'train_all.sh'), 'w', encoding='utf-8') as f:
        f.write('#!/usr/bin/env bash\n# One run per arm (edit the launcher '
                'to your scheduler), then compare.\nset -e\n')
        for arm in arms:
            f.write(arm['commands']['train'] + '\n')
        f.write(manifest['compare'] + '\n')
    return manifest
