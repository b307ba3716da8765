"""Reading mmdet configs: load with a clear error, find datasets and heads.

Soft Teacher nests the detector under ``model.detector`` and the train
datasets under ``train_dataloader.dataset.datasets``; these helpers hide that.
"""
import os
from typing import Iterator, Optional, Union

from mmengine.config import Config, ConfigDict

from .errors import MMExtError

DATASET_WRAPPERS = ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset',
                    'MultiImageMixDataset')


def load_config(path: Union[str, Config],
                cfg_options: Optional[dict] = None,
                data_root: Optional[str] = None) -> Config:
    """Load an mmdet config (.py, .yaml, .json) or pass a Config through.

    Args:
        path: Config file, or an already loaded Config.
        cfg_options: ``--cfg-options`` overrides (mmengine's DictAction).
        data_root: Dataset folder for every dataset and evaluator
            (see :func:`set_data_root`).

    Raises:
        MMExtError: the file is missing or does not parse.
    """
    if isinstance(path, Config):
        cfg = path
    elif not os.path.isfile(path):
        raise MMExtError(f'{path}: no such config file')
    else:
        try:
            cfg = Config.fromfile(path)
        except Exception as exc:  # mmengine raises many types for a bad config
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise MMExtError(
                f'{path}: cannot load config ({type(exc).__name__}: {msg})') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config_structure(cfg, getattr(cfg, 'filename', None) or str(path))
    if data_root:
        set_data_root(cfg, data_root)
    return cfg


def check_config_structure(cfg: Config, name: str) -> None:
    """The shapes mmext reads a config through: ``model`` (a string in an
    Ultralytics args.yaml; else a dict, and a semi
    detector's ``detector``) and every dataloader, dataset and wrapped
    dataset a dict, wrapped ``datasets`` a list of dicts.

    Raises:
        MMExtError: naming the config and the key that has the wrong type.
    """
    def need_dict(value, key: str) -> None:
        if value is not None and not isinstance(value, dict):
            raise MMExtError(f'{name}: {key} must be a dict, got '
                             f'{type(value).__name__} {value!r:.60}')

    model = cfg.get('model')
    if not isinstance(model, str):  # Ultralytics' args.yaml names a file
        need_dict(model, 'model')
    if isinstance(model, dict):
        need_dict(model.get('detector'), 'model.detector')
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        need_dict(loader, f'{split}_dataloader')
        if isinstance(loader, dict):
            _check_dataset_structure(loader.get('dataset'),
                                     f'{split}_dataloader.dataset', need_dict,
                                     name)


def _check_dataset_structure(ds, key: str, need_dict, name: str) -> None:
    need_dict(ds, key)
    if not isinstance(ds, dict):
        return
    inner = ds.get('datasets')
    if inner is not None:
        if not isinstance(inner, (list, tuple)):
            raise MMExtError(f'{name}: {key}.datasets must be a list of '
                             f'dataset dicts, got {type(inner).__name__}')
        for i, sub in enumerate(inner):
            _check_dataset_structure(sub, f'{key}.datasets[{i}]', need_dict,
                                     name)
    _check_dataset_structure(ds.get('dataset'), f'{key}.dataset', need_dict,
                             name)


def detector_cfg(model_cfg: dict) -> dict:
    """Return the detector config, unwrapping SemiBaseDetector's ``detector``."""
    return model_cfg.get('detector', model_cfg)


def iter_leaf_datasets(dataset_cfg: dict) -> Iterator[dict]:
    """Yield the real datasets inside dataset wrappers, in order."""
    if dataset_cfg.get('type') in DATASET_WRAPPERS or 'datasets' in dataset_cfg:
        inner = dataset_cfg.get('datasets')
        if inner is None:
            inner = [dataset_cfg.get('dataset')]
        for sub in inner:
            yield from iter_leaf_datasets(sub)
    else:
        yield dataset_cfg


def _transform_types(pipeline) -> Iterator[str]:
    for t in pipeline or []:
        if isinstance(t, dict):
            yield t.get('type', '')
            for key in ('transforms', 'sup', 'unsup_teacher', 'unsup_student'):
                sub = t.get(key)
                if isinstance(sub, list):
                    yield from _transform_types(sub)
                elif isinstance(sub, dict):
                    yield from _transform_types([sub])


def is_labeled(dataset_cfg: dict) -> bool:
    """True for a dataset whose pipeline loads boxes (not an unlabeled one)."""
    types = set(_transform_types(dataset_cfg.get('pipeline')))
    return 'LoadAnnotations' in types and 'LoadEmptyAnnotations' not in types


def train_dataset_cfg(cfg: Config) -> dict:
    """The labeled train dataset (for Soft Teacher, the supervised source).

    Raises:
        MMExtError: the config has no train dataset with annotations.
    """
    loader = cfg.get('train_dataloader')
    if not loader or 'dataset' not in loader:
        raise MMExtError(f'{cfg.filename}: no train_dataloader.dataset')
    leaves = list(iter_leaf_datasets(loader['dataset']))
    for ds in leaves:
        if is_labeled(ds):
            return ds
    if leaves:
        return leaves[0]
    raise MMExtError(f'{cfg.filename}: train_dataloader.dataset holds no dataset')


def dataset_ann_path(dataset_cfg: dict) -> str:
    """Absolute-or-relative path of a dataset's ann_file, joined to data_root."""
    ann = dataset_cfg.get('ann_file', '')
    root = dataset_cfg.get('data_root') or ''
    return ann if os.path.isabs(ann) or not root else os.path.join(root, ann)


def dataset_img_dir(dataset_cfg: dict) -> str:
    """Image folder of a dataset: data_root joined with data_prefix img."""
    prefix = dataset_cfg.get('data_prefix') or {}
    img = prefix.get('img', prefix.get('img_path', '')) or ''
    root = dataset_cfg.get('data_root') or ''
    return img if os.path.isabs(img) or not root else os.path.join(root, img)


def set_data_root(cfg: Config, data_root: str) -> Config:
    """Point every dataset and evaluator of ``cfg`` at ``data_root`` in place.

    Datasets get ``data_root``; evaluators whose ``ann_file`` started with the
    old root get it rewritten. Used by the tools' ``--data-root`` flag.

    Args:
        cfg: A loaded config.
        data_root: New folder that holds the annotations and images.
    """
    data_root = data_root.rstrip('/') + '/'
    old_roots = set()
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        for ds in iter_leaf_datasets(loader['dataset']):
            if ds.get('data_root'):
                old_roots.add(ds['data_root'])
            ds['data_root'] = data_root
    for key in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(key)
        for one in (ev if isinstance(ev, list) else [ev] if ev else []):
            ann = one.get('ann_file')
            if not ann:
                continue
            for old in sorted(old_roots, key=len, reverse=True):
                if ann.startswith(old):
                    one['ann_file'] = data_root + ann[len(old):].lstrip('/')
                    break
    for key in ('labeled_dataset', 'unlabeled_dataset'):
        if isinstance(cfg.get(key), (dict, ConfigDict)):
            cfg[key]['data_root'] = data_root
    cfg['data_root'] = data_root
    return cfg


def metainfo_classes(dataset_cfg: dict) -> Optional[tuple]:
    """Class names a dataset config sets in ``metainfo``, if any."""
    meta = dataset_cfg.get('metainfo') or {}
    classes = meta.get('classes')
    return tuple(classes) if classes else None
