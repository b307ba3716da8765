"""Diff two training configs, group the changes and flag risky combinations.

Both configs are loaded with mmengine's Config (.py, .yaml, .json: mmdet
configs and YOLO-style hyperparameter files such as Ultralytics' args.yaml
alike) and walked together. Dicts are compared key by key
(``model.detector.roi_head.bbox_head.loss_cls.type``); a pipeline (a list of
dicts with a ``type``: transforms, hooks, LR schedulers) is aligned on the
types with difflib, so an inserted transform is one change ("PhotoMetricDistortion
inserted after RandomFlip") and a kept one is compared parameter by
parameter (``train_pipeline[RandomFlip].prob``). A place that equals a
top-level variable in both configs (``train_dataloader.dataset.pipeline`` of
``train_pipeline``) is a copy, listed once under the variable. Every change
is put in one group: optimizer and LR schedule, loss, anchors and assigner,
augmentation, data and batch, semi-supervised thresholds, or other. Risk
rules then look at the changes together, each firing with a severity and a
one-line reason.
"""
import difflib
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple


from mmext.utils.config import load_config

OPTIM = 'optimizer/LR schedule'
LOSS = 'loss'
ANCHORS = 'anchors/assigner'
AUG = 'augmentation'
DATA = 'data/batch'
SEMI = 'semi-supervised thresholds'
OTHER = 'other'
GROUPS = (OPTIM, LOSS, ANCHORS, AUG, DATA, SEMI, OTHER)

SEVERITIES = ('low', 'medium', 'high')

# Top-level names of YOLO-style hyperparameter files (flat YAML).
_YOLO_GROUPS = {
    OPTIM: {'lr0', 'lrf', 'momentum', 'weight_decay', 'warmup_epochs',
            'warmup_momentum', 'warmup_bias_lr', 'optimizer', 'cos_lr',
            'epochs', 'lr', 'max_iters', 'max_epochs', 'nbs', 'patience'},
    LOSS: {'box', 'cls', 'obj', 'cls_pw', 'obj_pw', 'fl_gamma', 'fl_alpha',
           'dfl', 'pose', 'kobj', 'label_smoothing'},
    ANCHORS: {'iou_t', 'anchor_t', 'anchors'},
    AUG: {'hsv_h', 'hsv_s', 'hsv_v', 'degrees', 'translate', 'scale',
          'shear', 'perspective', 'flipud', 'fliplr', 'mosaic', 'mixup',
          'copy_paste', 'close_mosaic', 'erasing', 'auto_augment', 'bgr',
          'cutmix', 'copy_paste_mode', 'crop_fraction', 'multi_scale'},
    DATA: {'batch_size', 'batch', 'imgsz', 'img_size', 'workers',
           'num_workers', 'data_root', 'cache', 'rect', 'data', 'fraction',
           'single_cls', 'classes'},
    SEMI: {'conf_thres_pseudo', 'pseudo_thr', 'unsup_weight', 'sup_weight'},
}

#: Keys holding the learning rate / batch size / weight decay, by priority.
LR_KEYS = ('optim_wrapper.optimizer.lr', 'optimizer.lr', 'lr0', 'lr')
BATCH_KEYS = ('train_dataloader.batch_size', 'data.samples_per_gpu',
              'batch_size', 'batch')
WD_KEYS = ('optim_wrapper.optimizer.weight_decay', 'optimizer.weight_decay',
           'weight_decay')
YOLO_LOSS_WEIGHTS = ('box', 'cls', 'obj', 'dfl', 'pose', 'kobj')


@dataclass
class Change:
    """One difference between the configs.

    ``kind`` is 'changed', 'added' or 'removed' for a key, 'inserted',
    'removed' or 'replaced' for a whole item of a pipeline (a list of dicts
    with a ``type``). ``key`` is the readable path
    (``train_pipeline[RandomFlip].prob``); ``path_a`` / ``path_b`` are the
    dotted paths with list indexes in A and B (None where the side has no
    such item); ``note`` says where an item was inserted or removed.
    """
    key: str
    before: Any
    after: Any
    kind: str
    group: str
    path_a: Optional[str] = None
    path_b: Optional[str] = None
    note: str = ''


@dataclass
class Alias:
    """A value that is the same as a top-level variable in both configs.

    mmdet configs write ``train_pipeline = [...]`` and then
    ``train_dataloader = dict(dataset=dict(pipeline=train_pipeline))``; the
    loaded config holds two copies. Changes are listed once, under
    ``same_as``; ``key`` / ``path_a`` / ``path_b`` name the other place.
    """
    key: str
    same_as: str
    path_a: str
    path_b: str


@dataclass
class Risk:
    """A fired risk rule: name, severity, one-line reason, keys involved."""
    rule: str
    severity: str
    reason: str
    keys: List[str] = field(default_factory=list)


def flatten(obj: Any, prefix: str = '') -> Dict[str, Any]:
    """Nested dicts/lists as ``{dotted.key: leaf}``; lists of scalars stay whole."""
    out: Dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f'{prefix}.{k}' if prefix else str(k)))
    elif _is_indexed(obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f'{prefix}.{i}'))
    else:
        out[prefix] = _plain(obj)
    return out


def _is_indexed(v: Any) -> bool:
    """A list walked item by item: it holds containers, and is not a list of
    number lists (``scale=[(1333, 640), (1333, 800)]`` is one value)."""
    return isinstance(v, (list, tuple)) and any(
        isinstance(x, (dict, list, tuple)) for x in v) and not all(
            isinstance(x, (list, tuple)) and all(
                isinstance(y, (int, float)) for y in x) for x in v)


def is_typed_list(v: Any) -> bool:
    """A pipeline-like list: every item a dict with a ``type`` (transforms,
    hooks, LR schedulers)."""
    return isinstance(v, list) and bool(v) and all(
        isinstance(x, dict) and 'type' in x for x in v)


def _plain(v: Any) -> Any:
    """Tuples as lists, so a .py tuple equals the same YAML/JSON list."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def group_of(key: str) -> str:
    """The group a key belongs to (first matching rule wins).

    Item labels (``[RandomFlip]``) are left out: a hook named
    ``LossStabilityHook`` is not a loss.
    """
    key = re.sub(r'\[[^\]]*\]', '', key)
    parts = key.split('.')
    if len(parts) == 1:
        for group, names in _YOLO_GROUPS.items():
            if key in names:
                return group
    low = [p.lower() for p in parts]
    if 'semi_train_cfg' in low or any('pseudo' in p for p in low):
        return SEMI
    if any('loss' in p for p in low):
        return LOSS
    if 'pipeline' in ''.join(low) or low[0] in ('color_space', 'geometric',
                                                  'scale'):
        return AUG
    if low[0].endswith('dataloader') or low[0] in ('data', 'batch_size',
                                                   'data_root'):
        return DATA
    if any(w in p for p in low
           for w in ('anchor', 'assigner', 'sampler', 'rpn_proposal',
                     'bbox_coder')):
        return ANCHORS
    if any(w in p for p in low
           for w in ('optim', 'param_scheduler', 'lr_config', 'auto_scale_lr')) \
            or key in ('train_cfg.max_iters', 'train_cfg.max_epochs'):
        return OPTIM
    return OTHER


#: mmengine adds ``_scope_`` when loading ``mmdet::`` bases, and a
#: ``_delete_`` that had no base dict to replace stays in the loaded config:
#: neither is a change.
BOOKKEEPING = re.compile(r'(^|\.)(_scope_|_delete_)$')
_MISSING = object()


def strip_bookkeeping(obj: Any) -> Any:
    """A copy without ``_scope_`` keys, tuples as lists."""
    if isinstance(obj, dict):
        return {k: strip_bookkeeping(v) for k, v in obj.items()
                if not BOOKKEEPING.search(str(k))}
    if isinstance(obj, (list, tuple)):
        return [strip_bookkeeping(v) for v in obj]
    return obj


def _same(x: Any, y: Any) -> bool:
    return x == y or (_is_nan(x) and _is_nan(y))


def _join(prefix: str, part: Any) -> str:
    return f'{prefix}.{part}' if prefix else str(part)


def _item_labels(items: Sequence[dict]) -> List[str]:
    """``Type`` per item, ``Type#2`` for the second of a repeated type."""
    types = [str(x['type']) for x in items]
    seen: Dict[str, int] = {}
    labels = []
    for t in types:
        seen[t] = seen.get(t, 0) + 1
        labels.append(f'{t}#{seen[t]}' if types.count(t) > 1 else t)
    return labels


class _TreeDiff:
    """Walks A and B together; collects changes and aliases.

    Args:
        a: Config A as plain data, bookkeeping stripped.
        b: Config B, the same.
    """

    def __init__(self, a: dict, b: dict):
        self.a, self.b = a, b
        self.changes: List[Change] = []
        self.aliases: List[Alias] = []
        # top-level variables a nested copy may stand for, in B's order
        self.tops = [k for k in b if k in a]

    def run(self) -> None:
        """Diff every top-level key (A's order, then B's new ones)."""
        for k in list(self.a) + [k for k in self.b if k not in self.a]:
            self.walk(self.a.get(k, _MISSING), self.b.get(k, _MISSING),
                      str(k), str(k) if k in self.a else None,
                      str(k) if k in self.b else None)

    def _alias_of(self, va: Any, vb: Any, pa: str) -> str:
        """The top-level name this pair is a copy of in both configs, or ''.

        Containers are matched on value. A scalar only when its own name is
        the variable's (``train_cfg.max_iters`` and ``max_iters``):
        ``prob=0.5`` is everywhere and means nothing.
        """
        own_top = pa.split('.')[0]
        container = isinstance(va, (dict, list)) and bool(va)
        for top in self.tops:
            if top == own_top:
                break  # only an earlier variable: the later one is the copy
            if not container and pa.rsplit('.', 1)[-1] != top:
                continue
            if _same(self.a[top], va) and _same(self.b[top], vb):
                return top
        return ''

    def walk(self, va: Any, vb: Any, key: str, pa: Optional[str],
             pb: Optional[str]) -> None:
        """Diff one pair of values (``_MISSING`` for an absent side)."""
        if va is not _MISSING and vb is not _MISSING:
            if _same(va, vb):
                return
            top = self._alias_of(va, vb, pa)
            if top:
                self.aliases.append(Alias(key, top, pa, pb))
                return
        if isinstance(va, dict) or isinstance(vb, dict):
            self._walk_dict(va, vb, key, pa, pb)
        elif (is_typed_list(va) or is_typed_list(vb)) and all(
                is_typed_list(v) or v in ([], _MISSING) for v in (va, vb)):
            self._align(self._as_list(va), self._as_list(vb), key, pa, pb)
        elif _is_indexed(va) or _is_indexed(vb):
            self._walk_list(va, vb, key, pa, pb)
        else:
            self._leaf(va, vb, key, pa, pb)

    @staticmethod
    def _as_list(v: Any) -> list:
        return [] if v is _MISSING else v

    def _walk_dict(self, va, vb, key, pa, pb) -> None:
        """Key by key; a dict against a scalar is the scalar removed/added
        and the dict's keys added/removed (as the flat keys read)."""
        da = va if isinstance(va, dict) else {}
        db = vb if isinstance(vb, dict) else {}
        if not isinstance(va, dict) and va is not _MISSING:
            self._leaf(va, _MISSING, key, pa, None)
        if not isinstance(vb, dict) and vb is not _MISSING:
            self._leaf(_MISSING, vb, key, None, pb)
        for k in list(da) + [k for k in db if k not in da]:
            self.walk(da.get(k, _MISSING), db.get(k, _MISSING),
                      _join(key, k), _join(pa, k) if k in da else None,
                      _join(pb, k) if k in db else None)

    def _walk_list(self, va, vb, key, pa, pb) -> None:
        """Position by position (lists of containers without a ``type``)."""
        la = va if isinstance(va, list) else []
        lb = vb if isinstance(vb, list) else []
        if not isinstance(va, list) and va is not _MISSING:
            self._leaf(va, _MISSING, key, pa, None)
        if not isinstance(vb, list) and vb is not _MISSING:
            self._leaf(_MISSING, vb, key, None, pb)
        for i in range(max(len(la), len(lb))):
            self.walk(la[i] if i < len(la) else _MISSING,
                      lb[i] if i < len(lb) else _MISSING, _join(key, i),
                      _join(pa, i) if i < len(la) else None,
                      _join(pb, i) if i < len(lb) else None)

    def _align(self, la: list, lb: list, key: str, pa: Optional[str],
               pb: Optional[str]) -> None:
        """A pipeline, aligned on the transform types: an inserted or removed
        transform is one row, a kept one is diffed parameter by parameter."""
        labels_a, labels_b = _item_labels(la), _item_labels(lb)
        types_a = [str(x['type']) for x in la]
        types_b = [str(x['type']) for x in lb]
        matcher = difflib.SequenceMatcher(None, types_a, types_b,
                                          autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == 'equal':
                for i, j in zip(range(i1, i2), range(j1, j2)):
                    self.walk(la[i], lb[j], f'{key}[{labels_b[j]}]',
                              _join(pa, i), _join(pb, j))
            elif op == 'replace' and i2 - i1 == j2 - j1:
                for i, j in zip(range(i1, i2), range(j1, j2)):
                    self._item(la[i], lb[j], f'{key}[{labels_b[j]}]',
                               _join(pa, i), _join(pb, j), 'replaced',
                               f'{labels_a[i]} replaced by {labels_b[j]}')
            else:
                for i in range(i1, i2):
                    self._item(la[i], None, f'{key}[{labels_a[i]}]',
                               _join(pa, i), None, 'removed',
                               f'{labels_a[i]} removed'
                               + _where(labels_a, i, 'was '))
                for j in range(j1, j2):
                    self._item(None, lb[j], f'{key}[{labels_b[j]}]', None,
                               _join(pb, j), 'inserted',
                               f'{labels_b[j]} inserted' + _where(labels_b, j))

    def _item(self, before, after, key, pa, pb, kind, note) -> None:
        self.changes.append(Change(key, before, after, kind, group_of(key),
                                   pa, pb, note))

    def _leaf(self, va, vb, key, pa, pb) -> None:
        kind = 'changed' if va is not _MISSING and vb is not _MISSING else (
            'removed' if vb is _MISSING else 'added')
        self.changes.append(Change(
            key, None if va is _MISSING else va,
            None if vb is _MISSING else vb, kind, group_of(key), pa, pb))


def _where(labels: Sequence[str], i: int, was: str = '') -> str:
    """`` after RandomFlip`` (or before the first, or into an empty list)."""
    if i > 0:
        return f' ({was}after {labels[i - 1]})' if was else \
            f' after {labels[i - 1]}'
    if len(labels) > 1:
        return f' ({was}before {labels[1]})' if was else \
            f' before {labels[1]}'
    return ''


def diff_trees(a: dict, b: dict) -> Tuple[List[Change], List[Alias]]:
    """The changes from A to B, and the copies of top-level variables whose
    changes are listed once, under the variable.

    Args:
        a: Config A as plain data (``Config.to_dict()``).
        b: Config B.

    Returns:
        ``(changes, aliases)``; mmengine bookkeeping (``_scope_``) is not a
        change, pipelines are aligned on transform type.
    """
    tree = _TreeDiff(strip_bookkeeping(a), strip_bookkeeping(b))
    tree.run()
    return tree.changes, tree.aliases


def expand_aliases(changes: Sequence[Change],
                   aliases: Sequence[Alias]) -> List[Change]:
    """The changes plus the same changes at every place that is a copy.

    What a writer of configs needs (mmengine resolves ``pipeline=
    train_pipeline`` in the file that says it: an override of
    ``train_pipeline`` alone does not reach the dataloader).

    Args:
        changes: As :func:`diff_trees` lists them.
        aliases: As :func:`diff_trees` found them.
    """
    out = list(changes)
    seen = {(c.path_a, c.path_b) for c in out}
    todo = list(out)
    while todo:
        c = todo.pop()
        for al in aliases:
            moved = _moved(c, al)
            if moved and (moved.path_a, moved.path_b) not in seen:
                seen.add((moved.path_a, moved.path_b))
                out.append(moved)
                todo.append(moved)
    return out


def _moved(c: Change, al: Alias) -> Optional[Change]:
    """``c`` at the alias's place when it lies under ``al.same_as``."""
    def move(path: Optional[str], to: str) -> Optional[str]:
        if path is None:
            return None
        if path == al.same_as or path.startswith(al.same_as + '.'):
            return to + path[len(al.same_as):]
        return _MISSING  # type: ignore[return-value]

    pa, pb = move(c.path_a, al.path_a), move(c.path_b, al.path_b)
    if pa is _MISSING or pb is _MISSING:
        return None
    if not (c.key == al.same_as or c.key.startswith(
            (al.same_as + '.', al.same_as + '['))):
        return None
    key = al.key + c.key[len(al.same_as):]
    return Change(key, c.before, c.after, c.kind, c.group, pa, pb, c.note)


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _first(flat: Dict[str, Any], keys: Sequence[str]) -> Tuple[str, Any]:
    for k in keys:
        if k in flat:
            return k, flat[k]
    return '', None


def _ratio(before: Any, after: Any) -> Optional[float]:
    b, a = _num(before), _num(after)
    if b is None or a is None or b == 0:
        return None
    return a / b


def _fmt_change(c: Change) -> str:
    r = _ratio(c.before, c.after)
    tail = f' (x{r:.2f})' if r is not None else ''
    return f'{_short(c.key)} {c.before} -> {c.after}{tail}'


def _short(key: str, parts: int = 3) -> str:
    """The last ``parts`` parts of a dotted key (``rpn_head.loss_cls.gamma``)."""
    return '.'.join(key.split('.')[-parts:])


def _loss_path(key: str) -> str:
    """The loss dict a key belongs to (``...loss_cls`` of ``...loss_cls.gamma``)."""
    parts = key.split('.')
    for i in range(len(parts) - 1, -1, -1):
        if 'loss' in parts[i].lower():
            return '.'.join(parts[:i + 1])
    return key


def _loss_type(flat: Dict[str, Any], paths: Sequence[Optional[str]]) -> str:
    """The ``type`` of the loss dict the first of ``paths`` lies in."""
    for p in paths:
        if p:
            return str(flat.get(_loss_path(p) + '.type', ''))
    return ''


def rule_focal(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """Focal loss switched on, or its gamma/alpha changed."""
    risks = []
    for c in changes:
        if c.key in ('fl_gamma', 'fl_alpha'):
            # unset and 0 mean the same: gamma 0 is focal loss off
            was, now = _num(c.before) or 0.0, _num(c.after) or 0.0
            if was == now:
                continue
            if c.key == 'fl_gamma' and was == 0 and now > 0:
                why = f'focal loss switched on (fl_gamma {c.before} -> ' \
                      f'{c.after}): it down-weights easy examples and ' \
                      'changes the whole loss scale; validate it alone'
            elif c.key == 'fl_gamma' and now == 0:
                why = f'focal loss switched off (fl_gamma {c.before} -> ' \
                      f'{c.after}): the loss scale changes; validate it alone'
            else:
                why = f'focal {c.key} changed {c.before} -> {c.after}: ' \
                      'a different focus on hard examples; validate it alone'
            risks.append(Risk('focal', 'high', why, [c.key]))
    by_loss: Dict[str, List[Change]] = {}
    for c in changes:
        if c.group == LOSS and '.' in c.key:
            by_loss.setdefault(_loss_path(c.key), []).append(c)
    for path, cs in by_loss.items():
        # the flat dicts are indexed by position: look up each side's path
        t_before = _loss_type(a, [c.path_a for c in cs])
        t_after = _loss_type(b, [c.path_b for c in cs])
        if 'Focal' in t_after and 'Focal' not in t_before:
            rcnn = ('; in the R-CNN head it must match the softmax/sigmoid '
                    'the head reads' if 'roi_head' in path else '')
            why = f'focal loss switched on in {_short(path)} ' \
                  f'({t_before or "none"} -> {t_after}): it down-weights easy ' \
                  f'examples and changes the loss scale{rcnn}; validate it ' \
                  'alone'
            risks.append(Risk('focal', 'high', why, [c.key for c in cs]))
        elif 'Focal' in t_after:
            tuned = [c for c in cs if c.key.endswith(('.gamma', '.alpha'))]
            if tuned:
                why = f'focal loss parameters changed in {_short(path)}: ' + ', '.join(
                    _fmt_change(c) for c in tuned)
                risks.append(Risk('focal', 'high', why,
                                  [c.key for c in tuned]))
    return risks


def rule_batch_lr(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """Batch size changed without the linear-scaling LR change."""
    keyed = {c.key: c for c in changes}
    bkey, _ = _first({k: None for k in keyed}, BATCH_KEYS)
    if not bkey:
        return []
    before, after = keyed[bkey].before, keyed[bkey].after
    if not (_is_batch(before) and _is_batch(after)):
        return []  # unknown, 0, or Ultralytics' -1 / 0.7 (auto batch)
    nbs = _num(b.get('nbs'))
    if nbs and bkey in ('batch', 'batch_size'):
        # Ultralytics accumulates gradients up to nbs images per step
        before, after = _accumulated(before, nbs), _accumulated(after, nbs)
    scale = after / before
    if abs(scale - 1) <= 0.05:
        return []
    auto = b.get('auto_scale_lr.enable') is True
    lkey, lr_b = _first(b, LR_KEYS)
    lr_a = a.get(lkey)
    lr_ratio = _ratio(lr_a, lr_b) if lkey else None
    if auto or (lr_ratio is not None and abs(lr_ratio / scale - 1) <= 0.05):
        return []
    batch_txt = f'{bkey} {keyed[bkey].before} -> {keyed[bkey].after} ' \
                f'(x{scale:.2f})'
    if nbs and bkey in ('batch', 'batch_size'):
        batch_txt += f' (images per optimizer step {before:g} -> ' \
                     f'{after:g}: Ultralytics accumulates up to nbs={nbs:g})'
    if lr_ratio is None:
        lr_txt = 'no learning rate found to compare'
        expect = ''
    else:
        lr_txt = f'{lkey} {lr_a} -> {lr_b} (x{lr_ratio:.2f})'
        expect = f'; the linear scaling rule expects LR x{scale:.2f} = ' \
                 f'{_num(lr_a) * scale:.6g}'
    base = keyed[bkey].before
    how = 'scale lr0 with it' if nbs else \
        'or let mmengine scale it: auto_scale_lr=dict(enable=True, ' \
        f'base_batch_size={base})'
    why = f'{batch_txt} but {lr_txt}{expect} ({how})'
    return [Risk('batch size without LR scaling', 'high', why,
                 [bkey] + ([lkey] if lkey else []))]


def _is_batch(v: Any) -> bool:
    """A real batch size (Ultralytics' -1 and 0.7 ask for an automatic one)."""
    n = _num(v)
    return n is not None and n >= 1


def _accumulated(batch: float, nbs: float) -> float:
    """Images per optimizer step in Ultralytics (its trainer's
    ``accumulate = max(round(nbs / batch), 1)``)."""
    return batch * max(round(nbs / batch), 1)


def rule_wd_up_lr_down(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """Weight decay up while the learning rate goes down."""
    keyed = {c.key: c for c in changes}
    wkey, _ = _first({k: None for k in keyed}, WD_KEYS)
    lkey, _ = _first({k: None for k in keyed}, LR_KEYS)
    if not (wkey and lkey):
        return []
    wr = _ratio(keyed[wkey].before, keyed[wkey].after)
    lr = _ratio(keyed[lkey].before, keyed[lkey].after)
    if wr is None or lr is None or not (wr > 1 and lr < 1):
        return []
    why = f'weight decay up ({_fmt_change(keyed[wkey])}) while LR down ' \
          f'({_fmt_change(keyed[lkey])}): more regularisation with smaller ' \
          'steps can stop learning (over-regularised)'
    return [Risk('weight decay up, LR down', 'medium', why, [wkey, lkey])]


def _is_loss_weight(key: str) -> bool:
    return key in YOLO_LOSS_WEIGHTS or (key.endswith('loss_weight')
                                        and group_of(key) == LOSS)


def rule_loss_weights(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """Loss weights rebalanced."""
    cs = [c for c in changes if c.kind == 'changed' and _is_loss_weight(c.key)]
    if not cs:
        return []
    why = 'loss weights rebalanced: ' + ', '.join(
        _fmt_change(c) for c in cs) + \
        ': the gradient now favours other terms; change them one at a time'
    return [Risk('loss weights rebalanced', 'medium', why,
                 [c.key for c in cs])]


def _linearly_scaled_lr(changes: List[Change]) -> str:
    """The LR key when it follows the batch size linearly, else ''."""
    keyed = {c.key: c for c in changes}
    bkey, _ = _first({k: None for k in keyed}, BATCH_KEYS)
    lkey, _ = _first({k: None for k in keyed}, LR_KEYS)
    if not (bkey and lkey):
        return ''
    scale = _ratio(keyed[bkey].before, keyed[bkey].after)
    lr = _ratio(keyed[lkey].before, keyed[lkey].after)
    if not scale or lr is None or abs(lr / scale - 1) > 0.05:
        return ''
    return lkey


def rule_many_groups(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """Changes in several groups at once.

    An LR scaled linearly with the batch size counts as part of the batch
    change (one decision, not two).
    """
    follows = _linearly_scaled_lr(changes)
    counted = [c for c in changes if c.group != OTHER and c.key != follows]
    groups = [g for g in GROUPS if any(c.group == g for c in counted)]
    if len(groups) < 2:
        return []
    n = len(counted)
    why = f'{n} changes in {len(groups)} groups at once ' \
          f'({", ".join(groups)}): change one thing at a time, or a ' \
          'regression cannot be traced to its cause'
    return [Risk('several groups at once',
                 'high' if len(groups) >= 3 else 'medium', why, [])]


def rule_pseudo_with_loss(changes: List[Change], a: Dict,
                          b: Dict) -> List[Risk]:
    """Pseudo-label thresholds changed together with the loss."""
    thr = [c for c in changes if c.group == SEMI and 'thr' in c.key.lower()]
    loss = [c for c in changes if c.group == LOSS]
    if not (thr and loss):
        return []
    why = 'pseudo-label thresholds (' + ', '.join(
        _fmt_change(c) for c in thr) + f') changed together with the loss ' \
        f'({len(loss)} loss keys): a new loss shifts the scores the ' \
        'thresholds cut, so neither change can be judged'
    return [Risk('pseudo thresholds with loss', 'high', why,
                 [c.key for c in thr + loss])]


_ANCHOR_KEYS = ('ratios', 'scales', 'scales_per_octave')


def _anchor_count(flat: Dict[str, Any], gen: Optional[str]) -> Optional[int]:
    """Anchors per location of the anchor generator at ``gen``: ratios x
    scales (``scales``, or ``scales_per_octave`` of RetinaNet's)."""
    if not gen:
        return None
    ratios = flat.get(gen + '.ratios')
    scales = flat.get(gen + '.scales')
    n_scales = len(scales) if isinstance(scales, list) else _num(
        flat.get(gen + '.scales_per_octave'))
    if not isinstance(ratios, list) or not n_scales:
        return None
    return len(ratios) * int(n_scales)


def _generator(path: Optional[str]) -> Optional[str]:
    return path.rsplit('.', 1)[0] if path else None


def rule_anchor_count(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """A changed number of anchors per location changes the head's shapes.

    The RPN's ``rpn_cls`` / ``rpn_reg`` convolutions have one / four output
    channels per anchor (``len(ratios) * len(scales)`` anchors per location);
    a checkpoint trained with another count no longer loads into them:
    mmengine reports a size mismatch and leaves them at their initialisation.
    """
    by_gen: Dict[str, List[Change]] = {}
    for c in changes:
        gen, _, name = c.key.rpartition('.')
        if gen.endswith('anchor_generator') and name in _ANCHOR_KEYS:
            by_gen.setdefault(gen, []).append(c)
    risks = []
    for gen, cs in by_gen.items():
        was = _anchor_count(a, _generator(cs[0].path_a))
        now = _anchor_count(b, _generator(cs[0].path_b))
        if was is None or now is None or was == now:
            continue
        what = ', '.join(f'{c.key.rsplit(".", 1)[-1]} {_count(c.before)} -> '
                         f'{_count(c.after)}' for c in cs)
        head = _short(gen.rsplit('.anchor_generator', 1)[0], 1)
        if 'rpn' in head:
            shapes = f'the RPN head\'s output channels change (rpn_cls ' \
                     f'{was} -> {now}, rpn_reg {4 * was} -> {4 * now})'
        else:
            shapes = f'{head}\'s cls/reg output channels change (x{now}/{was})'
        risks.append(Risk(
            'anchor_count', 'high',
            f'{what} ({was} -> {now} anchors per location) in {_short(gen)}: '
            f'{shapes}, so a checkpoint of the old config no longer loads '
            f'its {head} weights (load_from reports a size mismatch and '
            'leaves them at their initialisation: retrain or fine-tune that '
            'head)', [c.key for c in cs]))
    return risks


def _count(v: Any) -> Any:
    return len(v) if isinstance(v, list) else v


def rule_lr_jump(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """The learning rate changed by 3x or more (not by batch scaling)."""
    keyed = {c.key: c for c in changes}
    lkey, _ = _first({k: None for k in keyed}, LR_KEYS)
    if lkey and 0.0 in (_num(keyed[lkey].before), _num(keyed[lkey].after)):
        # a ratio cannot say it: 0 on either side is the largest jump there is
        return [Risk('learning rate jump', 'high',
                     f'{_fmt_change(keyed[lkey])}: a learning rate of 0 '
                     'takes no optimizer step (nothing trains)', [lkey])]
    ratio = _ratio(keyed[lkey].before, keyed[lkey].after) if lkey else None
    if not ratio or lkey == _linearly_scaled_lr(changes) or \
            1 / 3 < ratio < 3:
        return []
    big = ratio >= 10 or ratio <= 0.1
    if ratio > 1:
        why = 'a step this large can diverge early (NaN or exploding ' \
              'losses) or outrun the warmup'
    else:
        why = 'training this slow may look converged long before it is'
    return [Risk('learning rate jump', 'high' if big else 'medium',
                 f'{_fmt_change(keyed[lkey])}: {why}; move it in steps '
                 '(an LR range test) with everything else fixed', [lkey])]


_IMGSZ_KEYS = ('imgsz', 'img_size')


def rule_imgsz(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """The YOLO training image size changed."""
    cs = [c for c in changes if c.key in _IMGSZ_KEYS]
    risks = []
    for c in cs:
        r = _ratio(_side(c.before), _side(c.after))
        if not r:
            continue
        risks.append(Risk(
            'image size', 'medium',
            f'{c.key} {c.before} -> {c.after} (x{r:.2f}): objects are '
            f'x{r:.2f} larger in pixels (which stride and anchor level '
            f'catches them changes), memory and time per image about '
            f'x{r * r:.1f}; compare mAP only at the same val {c.key}',
            [c.key]))
    return risks


def _side(v: Any) -> Any:
    """The longer side of an ``imgsz`` (an int, or [h, w])."""
    if isinstance(v, list) and v and all(_num(x) is not None for x in v):
        return max(v)
    return v


def _referable(v: Any) -> bool:
    """A value worth matching as a copy: a dict, a pipeline, a longer list
    (``[8]`` or a single number turn up everywhere by chance)."""
    return (isinstance(v, dict) and bool(v)) or is_typed_list(v) or (
        isinstance(v, list) and len(v) >= 2)


def _nodes(obj: Any, path: str = '') -> Iterator[Tuple[str, Any]]:
    """Every (dotted path, value) under ``obj``, containers included."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list) else ()
    for k, v in items:
        sub = _join(path, k)
        yield sub, v
        yield from _nodes(v, sub)


def _at(obj: Any, path: str) -> Any:
    """The value at a dotted path, ``_MISSING`` where there is none."""
    for p in path.split('.'):
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and p.isdigit() and int(p) < len(obj):
            obj = obj[int(p)]
        else:
            return _MISSING
    return obj


def rule_stale_copy(tree_a: dict, tree_b: dict) -> List[Risk]:
    """A top-level variable changed, a copy of it elsewhere did not.

    mmengine resolves ``pipeline=train_pipeline`` in the file that writes
    it: a config that overrides ``train_pipeline`` of its base leaves
    ``train_dataloader.dataset.pipeline`` at the base's list unless it
    assigns it again. Looks for places equal to the variable in A that kept
    A's value in B.

    Args:
        tree_a: Config A as plain data.
        tree_b: Config B as plain data.
    """
    a, b = strip_bookkeeping(tree_a), strip_bookkeeping(tree_b)
    risks = []
    for top in [k for k in a if k in b]:
        if not _referable(a[top]) or _same(a[top], b[top]):
            continue
        stale = [p for p, v in _nodes(a) if p.split('.')[0] != top
                 and _same(v, a[top]) and _same(_at(b, p), v)]
        if stale:
            where = ', '.join(stale)
            risks.append(Risk(
                'stale copy', 'high',
                f'{top} changed, but {where} (equal to it in A, so most '
                f'likely written as `= {top}`) kept the old value: mmengine '
                'resolved the reference in the base file, so that place '
                f'does not see the change; assign it again in B', [top] +
                stale))
    return risks


RULES = (rule_focal, rule_batch_lr, rule_wd_up_lr_down, rule_loss_weights,
         rule_many_groups, rule_pseudo_with_loss, rule_anchor_count,
         rule_lr_jump, rule_imgsz)


@dataclass
class ConfigDiff:
    """The changes from config A to config B and the risks they carry.

    ``aliases`` are the places that hold a copy of a top-level variable
    (``train_dataloader.dataset.pipeline`` of ``train_pipeline``) in both
    configs: their changes are in ``changes`` once, under the variable.
    """
    a: str
    b: str
    changes: List[Change]
    risks: List[Risk]
    aliases: List[Alias] = field(default_factory=list)

    def group_counts(self) -> Dict[str, int]:
        """Number of changes per group (groups without changes left out)."""
        return {g: n for g in GROUPS
                if (n := sum(c.group == g for c in self.changes))}

    def fires(self, severity: str) -> bool:
        """True when a rule at ``severity`` or above fired."""
        level = SEVERITIES.index(severity)
        return any(SEVERITIES.index(r.severity) >= level for r in self.risks)

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return dict(a=self.a, b=self.b, groups=self.group_counts(),
                    changes=[asdict(c) for c in self.changes],
                    aliases=[asdict(a) for a in self.aliases],
                    risks=[asdict(r) for r in self.risks])


def diff_configs(path_a: str, path_b: str) -> ConfigDiff:
    """Load, diff and apply every risk rule.

    Args:
        path_a: The baseline config (.py, .yaml, .json).
        path_b: The changed config.

    Raises:
        MMExtError: a config is missing or does not load.
    """
    tree_a = load_config(path_a).to_dict()
    tree_b = load_config(path_b).to_dict()
    changes, aliases = diff_trees(tree_a, tree_b)
    a, b = flatten(tree_a), flatten(tree_b)
    risks = [r for rule in RULES for r in rule(changes, a, b)]
    risks += rule_stale_copy(tree_a, tree_b)
    risks.sort(key=lambda r: -SEVERITIES.index(r.severity))
    return ConfigDiff(str(path_a), str(path_b), changes, risks, aliases)
