"""Diff two training configs, group the changes and flag risky combinations.

Both configs are loaded with mmengine's Config (.py, .yaml, .json: mmdet
configs and YOLO-style hyperparameter files alike), flattened to dotted keys
(``model.detector.roi_head.bbox_head.loss_cls.type``; list items by index),
and every changed key is put in one group: optimizer and LR schedule, loss,
anchors and assigner, augmentation, data and batch, semi-supervised
thresholds, or other. Risk rules then look at the changes together, each
firing with a severity and a one-line reason.
"""
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..utils.config import load_config

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
            'epochs', 'lr', 'max_iters', 'max_epochs'},
    LOSS: {'box', 'cls', 'obj', 'cls_pw', 'obj_pw', 'fl_gamma', 'fl_alpha',
           'dfl', 'pose', 'kobj', 'label_smoothing'},
    ANCHORS: {'iou_t', 'anchor_t', 'anchors'},
    AUG: {'hsv_h', 'hsv_s', 'hsv_v', 'degrees', 'translate', 'scale',
          'shear', 'perspective', 'flipud', 'fliplr', 'mosaic', 'mixup',
          'copy_paste', 'close_mosaic', 'erasing', 'auto_augment'},
    DATA: {'batch_size', 'batch', 'imgsz', 'img_size', 'workers',
           'num_workers', 'data_root', 'cache', 'rect'},
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
    """One key that differs (``kind``: 'changed', 'added' or 'removed')."""
    key: str
    before: Any
    after: Any
    kind: str
    group: str


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
    elif isinstance(obj, (list, tuple)) and any(
            isinstance(v, (dict, list, tuple)) for v in obj) and not all(
                isinstance(v, (list, tuple)) and all(
                    isinstance(x, (int, float)) for x in v) for v in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f'{prefix}.{i}'))
    else:
        out[prefix] = _plain(obj)
    return out


def _plain(v: Any) -> Any:
    """Tuples as lists, so a .py tuple equals the same YAML/JSON list."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def flatten_config(cfg: Config) -> Dict[str, Any]:
    """A loaded Config as flat dotted keys (``_base_`` already merged)."""
    return flatten(cfg.to_dict())


def group_of(key: str) -> str:
    """The group a dotted key belongs to (first matching rule wins)."""
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


#: mmengine adds these when loading ``mmdet::`` bases; they are not changes.
BOOKKEEPING = re.compile(r'(^|\.)_scope_$')


def diff_flat(a: Dict[str, Any], b: Dict[str, Any]) -> List[Change]:
    """Every key whose value differs, in A's key order then B's new keys;
    mmengine's bookkeeping keys (``_scope_``) are not changes."""
    changes = []
    for key in list(a) + [k for k in b if k not in a]:
        if BOOKKEEPING.search(key):
            continue
        if key in a and key in b:
            if a[key] == b[key] or (_is_nan(a[key]) and _is_nan(b[key])):
                continue
            kind = 'changed'
        else:
            kind = 'removed' if key in a else 'added'
        changes.append(Change(key, a.get(key), b.get(key), kind,
                              group_of(key)))
    return changes


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


def rule_focal(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """Focal loss switched on, or its gamma/alpha changed."""
    risks = []
    for c in changes:
        if c.key in ('fl_gamma', 'fl_alpha'):
            was, now = _num(c.before) or 0.0, _num(c.after) or 0.0
            if c.key == 'fl_gamma' and was == 0 and now > 0:
                why = f'focal loss switched on (fl_gamma {c.before} -> ' \
                      f'{c.after}): it down-weights easy examples and ' \
                      'changes the whole loss scale; validate it alone'
            else:
                why = f'focal {c.key} changed {c.before} -> {c.after}: ' \
                      'a different focus on hard examples; validate it alone'
            risks.append(Risk('focal', 'high', why, [c.key]))
    by_loss: Dict[str, List[Change]] = {}
    for c in changes:
        if c.group == LOSS and '.' in c.key:
            by_loss.setdefault(_loss_path(c.key), []).append(c)
    for path, cs in by_loss.items():
        t_before = str(a.get(path + '.type', ''))
        t_after = str(b.get(path + '.type', ''))
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
    scale = _ratio(keyed[bkey].before, keyed[bkey].after)
    if not scale:  # unknown, or a batch size of 0 (nothing to scale to)
        return []
    auto = b.get('auto_scale_lr.enable') is True
    lkey, lr_b = _first(b, LR_KEYS)
    lr_a = a.get(lkey)
    lr_ratio = _ratio(lr_a, lr_b) if lkey else None
    if auto or (lr_ratio is not None and abs(lr_ratio / scale - 1) <= 0.05):
        return []
    batch_txt = f'{bkey} {keyed[bkey].before} -> {keyed[bkey].after} ' \
                f'(x{scale:.2f})'
    if lr_ratio is None:
        lr_txt = 'no learning rate found to compare'
        expect = ''
    else:
        lr_txt = f'{lkey} {lr_a} -> {lr_b} (x{lr_ratio:.2f})'
        expect = f'; the linear scaling rule expects LR x{scale:.2f} = ' \
                 f'{_num(lr_a) * scale:.6g}'
    base = keyed[bkey].before
    why = f'{batch_txt} but {lr_txt}{expect} (or let mmengine scale it: ' \
          f'auto_scale_lr=dict(enable=True, base_batch_size={base}))'
    return [Risk('batch size without LR scaling', 'high', why,
                 [bkey] + ([lkey] if lkey else []))]


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


def rule_anchor_count(changes: List[Change], a: Dict, b: Dict) -> List[Risk]:
    """A changed number of anchor ratios or scales changes the RPN head.

    The RPN's cls/reg convolutions have ``len(ratios) * len(scales)`` anchors
    per location: a checkpoint trained with another count no longer loads
    into them (``load_from`` leaves the RPN head randomly initialised).
    """
    risks = []
    for c in changes:
        if not c.key.endswith(('anchor_generator.ratios',
                               'anchor_generator.scales')):
            continue
        was = len(c.before) if isinstance(c.before, list) else None
        now = len(c.after) if isinstance(c.after, list) else None
        if was is not None and now is not None and was != now:
            what = c.key.rsplit('.', 1)[-1]
            risks.append(Risk(
                'anchor_count', 'high',
                f'{what} {was} -> {now} per location in {_short(c.key)}: the '
                'RPN head\'s cls/reg output channels change, so a checkpoint '
                'of the old config does not load into them (load_from leaves '
                'the RPN head random)', [c.key]))
    return risks


RULES = (rule_focal, rule_batch_lr, rule_wd_up_lr_down, rule_loss_weights,
         rule_many_groups, rule_pseudo_with_loss, rule_anchor_count)


@dataclass
class ConfigDiff:
    """The changes from config A to config B and the risks they carry."""
    a: str
    b: str
    changes: List[Change]
    risks: List[Risk]

    def group_counts(self) -> Dict[str, int]:
        """Number of changed keys per group (groups without changes left out)."""
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
                    risks=[asdict(r) for r in self.risks])


def diff_configs(path_a: str, path_b: str) -> ConfigDiff:
    """Load, flatten, diff and apply every risk rule.

    Args:
        path_a: The baseline config (.py, .yaml, .json).
        path_b: The changed config.

    Raises:
        MMExtError: a config is missing or does not load.
    """
    a = flatten_config(load_config(path_a))
    b = flatten_config(load_config(path_b))
    changes = diff_flat(a, b)
    risks = [r for rule in RULES for r in rule(changes, a, b)]
    risks.sort(key=lambda r: -SEVERITIES.index(r.severity))
    return ConfigDiff(str(path_a), str(path_b), changes, risks)
