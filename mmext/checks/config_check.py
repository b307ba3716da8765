"""Static checks of an mmdet config for silent mismatches (nothing crashes).

Each check reads the config only (no model is built) and returns findings:
``error`` for a setting that trains or scores something other than what the
config says, ``warning`` for a setting that is legal but has no effect or is
unusual enough to be a typo. The checks:

- ``loss-activation``: a sigmoid-only classification loss (mmdet
  ``FocalLoss``, ...) in a softmax R-CNN bbox head; a sigmoid loss in a dense
  head (RPN, RetinaNet, ...) whose config lacks ``use_sigmoid=True`` (the head
  sizes its output from that key: ``num_classes + 1`` softmax channels).
- ``num-classes``: dataset classes disagree between datasets or with a
  head's ``num_classes`` (a dataset without ``metainfo.classes`` has its
  type's default classes, 80 for CocoDataset).
- ``per-class-length``: alpha / gamma / class_weight lists whose length is not
  the number of logits the head gives the loss.
- ``loss-params``: gamma < 0, alpha outside [0, 1], loss_weight <= 0, and
  gamma in (0, 1) in mmdet's FocalLoss (NaN gradient on saturated logits).
- ``focal-settings``: a focal loss with gamma > 2 or loss_weight > 2, outside
  what published semi-supervised detectors use (and measured to hurt).
- ``anchors``: anchor ratios or scales <= 0, extreme or repeated ratios;
  RoI extractor strides that are not the RPN's.
- ``pseudo-thresholds``: Soft Teacher thresholds outside [0, 1]; per-class
  lists of the wrong length and malformed policy dicts; a list or policy on
  a model that takes one float (mmdet's SoftTeacher); a policy without
  ``PseudoThresholdHook``; rpn/cls thresholds (per class, a policy's floor)
  at or below ``pseudo_label_initial_score_thr`` (no effect); a teacher
  ``score_thr`` above the pseudo thresholds (they have no effect).
"""
import math
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config

from mmext import losses  # noqa: F401  registers the mmext losses looked up below
from mmext.anchors.anchor_spec import anchor_generator_errors
from mmext.checks.check_result import CheckResult
from mmext.utils.config import (detector_cfg, iter_leaf_datasets, load_config,
                            metainfo_classes)

#: mmdet classification losses that only implement a sigmoid.
SIGMOID_ONLY_LOSSES = ('FocalLoss', 'QualityFocalLoss', 'VarifocalLoss', 'GHMC')
#: Losses that tell BBoxHead their own channels and activation.
CUSTOM_ACTIVATION_LOSSES = ('SeesawLoss', 'FocalCustomLoss', 'CrossEntropyCustomLoss')
#: Anchor ratios (h/w) beyond 1:EXTREME_RATIO either way are flagged.
EXTREME_RATIO = 10.0
PSEUDO_THRESHOLD_KEYS = ('pseudo_label_initial_score_thr', 'rpn_pseudo_thr',
                         'cls_pseudo_thr')
PER_CLASS_KEYS = ('alpha', 'gamma', 'class_weight')
SEVERITIES = ('error', 'warning')


#: check_config's words for the two statuses of the one scale it uses
#: (:data:`mmext.checks.check_result.STATUSES`); its output keeps them.
SEVERITY_OF_STATUS = {'fail': 'error', 'warn': 'warning'}
STATUS_OF_SEVERITY = {v: k for k, v in SEVERITY_OF_STATUS.items()}


class ConfigFinding(CheckResult):
    """One problem found in a config: a :class:`CheckResult` of one item
    (status ``'fail'`` for an error, ``'warn'`` for a warning), so that the
    config, dataset, pipeline and prediction checks share one result type
    and one severity scale.

    Args:
        severity: 'error' (trains or scores the wrong thing) or 'warning'.
        check: Check name, e.g. 'loss-activation' (the result's ``name``).
        key: Dotted config key the finding is about (its ``scope``).
        message: One line: what is wrong and what it does (its ``detail``).
    """

    def __init__(self, severity: str, check: str, key: str,
                 message: str) -> None:
        if severity not in STATUS_OF_SEVERITY:
            raise ValueError(f'severity must be one of {SEVERITIES}, got '
                             f'{severity!r}')
        super().__init__(name=check, scope=key,
                         status=STATUS_OF_SEVERITY[severity], count=1,
                         total=1, detail=message)

    @property
    def severity(self) -> str:
        """'error' or 'warning' (check_config's words for fail and warn)."""
        return SEVERITY_OF_STATUS[self.status]

    @property
    def check(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        return self.scope

    @property
    def message(self) -> str:
        return self.detail

    def to_dict(self) -> dict:
        """The finding as check_config has always written it."""
        return dict(severity=self.severity, check=self.check, key=self.key,
                    message=self.message)


@dataclass
class HeadInfo:
    """A classification head of the detector, as the config describes it."""
    key: str
    cfg: dict
    kind: str  # 'rcnn' (softmax BBoxHead) or 'dense' (AnchorHead family)


def loss_activation(loss_cfg: dict) -> str:
    """What a classification loss trains: 'sigmoid', 'softmax' or 'custom'.

    mmext losses say it in their class attribute ``activation``; mmdet's
    CrossEntropyLoss follows ``use_sigmoid``; unknown losses follow
    ``use_sigmoid`` too (mmdet's convention) and count as 'softmax' without it.

    Args:
        loss_cfg: The ``loss_cls`` dict of a head.
    """
    loss_type = str(loss_cfg.get('type', ''))
    if loss_type in CUSTOM_ACTIVATION_LOSSES:
        return 'custom'
    if loss_type in SIGMOID_ONLY_LOSSES:
        return 'sigmoid'
    cls = MODELS.get(loss_type) if loss_type else None
    activation = getattr(cls, 'activation', None)
    if activation in ('sigmoid', 'softmax'):
        return activation
    return 'sigmoid' if loss_cfg.get('use_sigmoid', False) else 'softmax'


def classification_heads(cfg: Config) -> List[HeadInfo]:
    """The RPN, dense and R-CNN bbox heads of the config's detector."""
    model = cfg.get('model') or {}
    det = detector_cfg(model)
    prefix = 'model.detector' if 'detector' in model else 'model'
    heads = []
    for name in ('rpn_head', 'bbox_head'):
        if isinstance(det.get(name), dict):
            heads.append(HeadInfo(f'{prefix}.{name}', det[name], 'dense'))
    roi = det.get('roi_head')
    if isinstance(roi, dict):
        bbox = roi.get('bbox_head')
        bbox_list = bbox if isinstance(bbox, (list, tuple)) else [bbox]
        for i, one in enumerate(bbox_list):
            if isinstance(one, dict):
                idx = f'[{i}]' if isinstance(bbox, (list, tuple)) else ''
                heads.append(HeadInfo(f'{prefix}.roi_head.bbox_head{idx}', one, 'rcnn'))
    return heads


def head_num_classes(head: HeadInfo) -> int:
    """``num_classes`` of a head (RPN heads have 1 when unset)."""
    default = 1 if head.key.endswith('rpn_head') else 80
    return int(head.cfg.get('num_classes', default))


def loss_logits(head: HeadInfo) -> int:
    """Logits per sample that the head passes to its ``loss_cls``."""
    num = head_num_classes(head)
    if head.kind == 'rcnn':
        return num + 1
    return num if head.cfg.get('loss_cls', {}).get('use_sigmoid', False) else num + 1


def check_loss_activation(head: HeadInfo, is_soft_teacher: bool) -> List[ConfigFinding]:
    """A sigmoid loss in a softmax head, or a sigmoid flag the head misses."""
    loss = head.cfg.get('loss_cls')
    if not isinstance(loss, dict):
        return []
    act = loss_activation(loss)
    key = f'{head.key}.loss_cls'
    name = loss.get('type')
    if head.kind == 'rcnn' and act == 'sigmoid':
        extra = (" and SoftTeacher reads scores[:, -1] (softmax background) as "
                 "the weight of its negatives" if is_soft_teacher else '')
        return [ConfigFinding(
            'error', 'loss-activation', key,
            f'{name} is sigmoid-only but the R-CNN bbox head predicts with a '
            f'softmax over num_classes+1 logits: background is trained as an '
            f'independent class, scored by a softmax{extra}; use '
            f'SoftmaxFocalLoss')]
    if head.kind == 'dense' and act == 'sigmoid' and not loss.get('use_sigmoid', False):
        return [ConfigFinding(
            'error', 'loss-activation', key,
            f'{name} is a sigmoid loss but the config lacks use_sigmoid=True: '
            f'the head reads that key, builds num_classes+1 channels and '
            f'predicts with a softmax; add use_sigmoid=True')]
    return []


def _values(value) -> List[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]


def check_loss_params(head: HeadInfo) -> List[ConfigFinding]:
    """Per-class list lengths and the ranges of gamma, alpha, loss_weight."""
    loss = head.cfg.get('loss_cls')
    if not isinstance(loss, dict):
        return []
    key = f'{head.key}.loss_cls'
    expected = loss_logits(head)
    findings = []
    for name in PER_CLASS_KEYS:
        value = loss.get(name)
        if isinstance(value, (list, tuple)) and len(value) != expected:
            findings.append(ConfigFinding(
                'error', 'per-class-length', f'{key}.{name}',
                f'{len(value)} entries, but the head gives the loss {expected} '
                f'logits per sample' + (' (num_classes + background last)'
                                        if expected == head_num_classes(head) + 1 else '')))
    if loss.get('type') == 'EqualizedFocalLoss' and 'num_classes' in loss \
            and int(loss['num_classes']) != expected:
        findings.append(ConfigFinding(
            'error', 'per-class-length', f'{key}.num_classes',
            f'EqualizedFocalLoss num_classes={loss["num_classes"]}, but the head '
            f'gives it {expected} logits per sample'))
    for g in _values(loss['gamma']) if loss.get('gamma') is not None else []:
        if g < 0:
            findings.append(ConfigFinding('error', 'loss-params', f'{key}.gamma',
                                          f'gamma {g} < 0'))
        elif 0 < g < 1 and loss.get('type') == 'FocalLoss':
            findings.append(ConfigFinding(
                'warning', 'loss-params', f'{key}.gamma',
                f'gamma {g} in (0, 1): mmdet FocalLoss has an infinite modulating-'
                f'factor derivative at p_t=1, NaN gradients on saturated logits; '
                f'mmext SigmoidFocalLoss clamps'))
    for a in _values(loss['alpha']) if loss.get('alpha') is not None else []:
        if not 0.0 <= a <= 1.0:
            findings.append(ConfigFinding('error', 'loss-params', f'{key}.alpha',
                                          f'alpha {a} outside [0, 1]'))
    findings += _focal_outside_published(loss, key)
    weight = loss.get('loss_weight', 1.0)
    if weight is not None and float(weight) <= 0:
        findings.append(ConfigFinding('warning', 'loss-params', f'{key}.loss_weight',
                                      f'loss_weight {weight} <= 0 disables or '
                                      f'inverts the loss'))
    return findings


#: Focal settings beyond these are outside what published semi-supervised
#: detectors use (Unbiased Teacher: softmax focal, gamma 1.5, R-CNN head only).
PUBLISHED_MAX_GAMMA = 2.0
PUBLISHED_MAX_LOSS_WEIGHT = 2.0


def _focal_outside_published(loss: dict, key: str) -> List[ConfigFinding]:
    """A focal loss with gamma > 2 or loss_weight > 2: legal, but unlike any
    published SSOD detector, and measured by mmext to hurt."""
    if 'Focal' not in str(loss.get('type', '')):
        return []
    gammas = _values(loss['gamma']) if loss.get('gamma') is not None else []
    weight = loss.get('loss_weight', 1.0)
    high_gamma = any(g > PUBLISHED_MAX_GAMMA for g in gammas)
    high_weight = weight is not None and float(weight) > \
        PUBLISHED_MAX_LOSS_WEIGHT
    if not (high_gamma or high_weight):
        return []
    what = ' and '.join(
        part for part, on in ((f'gamma {max(gammas):g} > '
                               f'{PUBLISHED_MAX_GAMMA:g}', high_gamma),
                              (f'loss_weight {float(weight):g} > '
                               f'{PUBLISHED_MAX_LOSS_WEIGHT:g}', high_weight))
        if on)
    return [ConfigFinding(
        'warning', 'focal-settings', key,
        f'{loss.get("type")} with {what}: outside what published '
        'semi-supervised detectors use (Unbiased Teacher: softmax focal, '
        'gamma 1.5, R-CNN head only); mmext measured SoftmaxFocalLoss with '
        'gamma 3.5, alpha 0.75, loss_weight 2.5 to lower every class on the '
        'demo and NEU-DET (benchmarks/README.md, does_it_help.py)')]


def _all_datasets(cfg: Config) -> Iterator[Tuple[str, dict]]:
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(split)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'), dict):
            for i, ds in enumerate(iter_leaf_datasets(loader['dataset'])):
                yield f'{split}.dataset[{i}]', ds


def _default_classes(dataset_type: str) -> Optional[tuple]:
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cls = DATASETS.get(dataset_type) if dataset_type else None
    classes = getattr(cls, 'METAINFO', {}).get('classes') if cls else None
    return tuple(classes) if classes else None


def check_num_classes(cfg: Config, heads: Sequence[HeadInfo]) -> List[ConfigFinding]:
    """Dataset classes agree with each other and with the heads."""
    findings = []
    seen: Dict[tuple, str] = {}
    for key, ds in _all_datasets(cfg):
        classes = metainfo_classes(ds)
        if classes is None:
            # mmdet then uses the dataset type's own METAINFO (80 for COCO).
            classes = _default_classes(str(ds.get('type', '')))
            if classes is None:
                continue
            key = f'{key} (no metainfo.classes: {ds.get("type")} defaults)'
        seen.setdefault(classes, key)
    if len(seen) > 1:
        desc = '; '.join(f'{k}: {len(c)} classes' for c, k in seen.items())
        findings.append(ConfigFinding('error', 'num-classes', 'dataset.metainfo',
                                      f'datasets disagree on classes ({desc})'))
    if not seen:
        return findings
    classes, where = next(iter(seen.items()))
    for head in heads:
        if head.key.endswith('rpn_head'):
            continue
        num = head_num_classes(head)
        if num != len(classes):
            findings.append(ConfigFinding(
                'error', 'num-classes', f'{head.key}.num_classes',
                f'num_classes={num}, but {where} has {len(classes)} classes'))
    model = cfg.get('model') or {}
    roi = detector_cfg(model).get('roi_head') or {}
    mask = roi.get('mask_head') if isinstance(roi, dict) else None
    if isinstance(mask, dict) and int(mask.get('num_classes', 80)) != len(classes):
        findings.append(ConfigFinding(
            'error', 'num-classes', 'roi_head.mask_head.num_classes',
            f'num_classes={mask.get("num_classes", 80)}, but {where} has '
            f'{len(classes)} classes'))
    return findings


def _valid_numbers(values) -> List[float]:
    """The finite numbers of a config list (the rest are errors elsewhere)."""
    if not isinstance(values, (list, tuple)):
        return []
    return [float(v) for v in values if not isinstance(v, bool) and isinstance(
        v, (int, float)) and math.isfinite(v)]


def check_anchors(cfg: Config, heads: Sequence[HeadInfo]) -> List[ConfigFinding]:
    """Anchor ratios/scales in range; RoI strides equal to the RPN strides.

    The errors are :func:`mmext.anchors.anchor_spec.anchor_generator_errors`
    (anchor_fit refuses the same configs); the warnings are this check's.
    """
    findings = []
    rpn_strides = None
    for head in heads:
        gen = head.cfg.get('anchor_generator')
        if not isinstance(gen, dict):
            continue
        key = f'{head.key}.anchor_generator'
        errors = anchor_generator_errors(gen)
        findings += [ConfigFinding('error', 'anchors', f'{key}.{field}', message)
                     for field, message in errors]
        ratios = _valid_numbers(gen.get('ratios'))
        for r in ratios:
            if r > 0 and (r < 1 / EXTREME_RATIO or r > EXTREME_RATIO):
                findings.append(ConfigFinding(
                    'warning', 'anchors', f'{key}.ratios',
                    f'ratio {r} is beyond 1:{EXTREME_RATIO:g}; such anchors rarely '
                    f'reach the positive IoU threshold'))
        if len(set(ratios)) != len(ratios):
            findings.append(ConfigFinding('warning', 'anchors', f'{key}.ratios',
                                          f'repeated ratios {ratios}: duplicate anchors'))
        strides = gen.get('strides')
        if head.key.endswith('rpn_head') and isinstance(strides, (list, tuple)) \
                and not any(f == 'strides' for f, _ in errors):
            rpn_strides = [int(s[0] if isinstance(s, (list, tuple)) else s)
                           for s in strides]
    model = cfg.get('model') or {}
    roi = detector_cfg(model).get('roi_head') or {}
    extractor = roi.get('bbox_roi_extractor') if isinstance(roi, dict) else None
    if rpn_strides and isinstance(extractor, dict):
        roi_strides = [int(s) for s in extractor.get('featmap_strides') or []]
        if roi_strides and roi_strides != rpn_strides[:len(roi_strides)]:
            findings.append(ConfigFinding(
                'error', 'anchors', 'roi_head.bbox_roi_extractor.featmap_strides',
                f'{roi_strides} are not the RPN anchor strides {rpn_strides}: RoIs '
                f'are pooled at the wrong scale'))
    return findings


def _teacher_score_thr(cfg: Config) -> Optional[float]:
    det = detector_cfg(cfg.get('model') or {})
    rcnn = (det.get('test_cfg') or {}).get('rcnn') or {}
    thr = rcnn.get('score_thr') if isinstance(rcnn, dict) else None
    return None if thr is None else float(thr)


def _per_class_model(model_type: str) -> Optional[bool]:
    """True if the registered model type applies per-class thresholds, None
    if the type is not registered here (a user's module not imported)."""
    from mmdet.utils import register_all_modules

    from mmext.models import PerClassPseudoThrMixin
    register_all_modules(init_default_scope=False)
    try:
        cls = MODELS.get(model_type) if model_type else None
    except Exception:  # noqa: BLE001 - an unknown type is another check's
        cls = None
    if not isinstance(cls, type):
        return None
    return issubclass(cls, PerClassPseudoThrMixin)


def _has_hook(cfg: Config, hook_type: str) -> bool:
    hooks = cfg.get('custom_hooks') or []
    return any(isinstance(h, dict) and h.get('type') == hook_type
               for h in hooks)


def _stage_thresholds(semi: dict, num_classes: int, key: str
                      ) -> Tuple[dict, List[ConfigFinding]]:
    """Parse every stage spec; malformed ones become error findings."""
    from mmext.models.threshold_policies import StageThreshold
    from mmext.utils import MMExtError
    parsed, findings = {}, []
    for k in PSEUDO_THRESHOLD_KEYS:
        if semi.get(k) is None:
            continue
        spec = semi[k]
        try:
            parsed[k] = StageThreshold(k, spec.to_dict() if hasattr(
                spec, 'to_dict') else spec, num_classes)
        except MMExtError as exc:
            findings.append(ConfigFinding(
                'error', 'pseudo-thresholds', f'{key}.{k}',
                str(exc).replace(f'semi_train_cfg {k}: ', '')))
    return parsed, findings


def _lowest(stage) -> np.ndarray:
    """Per class, the lowest value a stage can take (a policy's floor)."""
    if stage.policy:
        return np.minimum(stage.fixed, stage.args['floor'])
    return stage.fixed


def check_pseudo_thresholds(cfg: Config) -> List[ConfigFinding]:
    """Soft Teacher pseudo-label thresholds: form, range, order, model."""
    model = cfg.get('model') or {}
    semi = model.get('semi_train_cfg')
    if not isinstance(semi, dict):
        return []
    key = 'model.semi_train_cfg'
    findings = []
    reg = semi.get('reg_pseudo_thr')
    if reg is not None and (not isinstance(reg, (int, float)) or float(reg) < 0):
        findings.append(ConfigFinding('error', 'pseudo-thresholds', f'{key}.reg_pseudo_thr',
                                      f'{reg!r}: expected a number >= 0 (a box-jitter std threshold)'))
    specs = {k: semi[k] for k in PSEUDO_THRESHOLD_KEYS if semi.get(k) is not None}
    scalar = {k: v for k, v in specs.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    model_type = str(model.get('type', ''))
    per_class = _per_class_model(model_type)
    if per_class is False:
        for k in sorted(set(specs) - set(scalar)):
            findings.append(ConfigFinding(
                'error', 'pseudo-thresholds', f'{key}.{k}',
                f'{model_type or "this model"} takes one float per stage; a per-class '
                f"list or policy needs model type='PerClassSoftTeacher' (mmext)"))
        specs = scalar
    heads = [h for h in classification_heads(cfg) if not h.key.endswith('rpn_head')]
    try:
        num_classes = head_num_classes(heads[-1]) if heads else None
    except (TypeError, ValueError):
        num_classes = None
    if num_classes is None or num_classes < 1:
        num_classes = 1 if not set(specs) - set(scalar) else None
    if num_classes is None:
        return findings + [ConfigFinding(
            'error', 'pseudo-thresholds', key,
            'per-class thresholds but no num_classes in the bbox head to check them against')]
    parsed, errors = _stage_thresholds(specs, num_classes, key)
    findings += errors
    if per_class and any(s.policy for s in parsed.values()) and not _has_hook(
            cfg, 'PseudoThresholdHook'):
        findings.append(ConfigFinding(
            'error', 'pseudo-thresholds', 'custom_hooks',
            "a threshold policy without dict(type='PseudoThresholdHook') in custom_hooks "
            'never updates: it stays at warmup_thr'))
    initial = parsed.get('pseudo_label_initial_score_thr')
    names = _class_names(cfg, num_classes)
    for k in ('rpn_pseudo_thr', 'cls_pseudo_thr'):
        if initial is None or initial.policy or k not in parsed:
            continue
        low = _lowest(parsed[k])
        # A policy's floor equal to the initial threshold is the natural
        # "never below initial" bound; only a fixed value there is idle.
        idle = [c for c in range(num_classes) if low[c] < initial.fixed[c]
                or (low[c] == initial.fixed[c] and not parsed[k].policy)]
        if not idle:
            continue
        what = 'its floor' if parsed[k].policy else k
        if parsed[k].is_scalar and initial.is_scalar:
            detail = (f'{k}={low[0]:g} <= pseudo_label_initial_score_thr={initial.fixed[0]:g}: '
                      f'boxes at or below {initial.fixed[0]:g} are already dropped, so it '
                      f'has no effect (the effective threshold is {initial.fixed[0]:g})')
        else:
            detail = (f'{what} at or below pseudo_label_initial_score_thr for '
                      + ', '.join(f'{names[c]} ({low[c]:g} <= {initial.fixed[c]:g})'
                                  for c in idle)
                      + ': there it does nothing (lower the initial threshold of those classes)')
        findings.append(ConfigFinding('warning', 'pseudo-thresholds', f'{key}.{k}', detail))
    teacher_thr = _teacher_score_thr(cfg)
    if teacher_thr is not None:
        for k, stage in parsed.items():
            low = float(_lowest(stage).min())
            if teacher_thr > low:
                findings.append(ConfigFinding(
                    'warning', 'pseudo-thresholds', f'{key}.{k}',
                    f'{k} goes down to {low:g} < the teacher\'s test_cfg.rcnn.score_thr='
                    f'{teacher_thr:g}: the teacher never outputs such boxes'))
    return findings


def _class_names(cfg: Config, num_classes: int) -> List[str]:
    for _, ds in _all_datasets(cfg):
        names = (ds.get('metainfo') or {}).get('classes')
        if names and len(names) == num_classes:
            return [str(n) for n in names]
    return [f'class {c}' for c in range(num_classes)]


def check_config(config: Union[str, Config]) -> List[ConfigFinding]:
    """Run every check on a config.

    Args:
        config: Config path or loaded Config.

    Returns:
        Findings, errors first.

    Raises:
        MMExtError: the config is missing or does not parse.
    """
    cfg = load_config(config)
    if not isinstance(cfg.get('model'), dict):
        return [ConfigFinding('error', 'structure', 'model',
                              'no model dict: nothing to build or check')]
    heads = classification_heads(cfg)
    model_type = str((cfg.get('model') or {}).get('type', ''))
    is_soft_teacher = model_type == 'SoftTeacher' or 'semi_train_cfg' in (cfg.get('model') or {})
    findings: List[ConfigFinding] = []
    for head in heads:
        findings += check_loss_activation(head, is_soft_teacher)
        findings += check_loss_params(head)
    findings += check_num_classes(cfg, heads)
    findings += check_anchors(cfg, heads)
    findings += check_pseudo_thresholds(cfg)
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def has_errors(findings: Sequence[ConfigFinding]) -> bool:
    """True when any finding is an error (the CLI then exits with 1)."""
    return any(f.status == 'fail' for f in findings)
