"""Each finding rule on a constructed case that fires and one that does not."""
import pytest

from mmext.investigation import findings as fd
from mmext.investigation.findings import Evidence, Finding, apply_rules

NAMES = ['Severe_Rust', 'Chipped', 'Broken', 'Tip_Wear']


def _validation(aps, best=None):
    out = {n: dict(ap=a, best_ap=(best or {}).get(n, a), best_iter=400)
           for n, a in zip(NAMES, aps)}
    out['all'] = dict(mAP=sum(aps) / len(aps), mAP50=0.5, iter=800,
                      model='teacher')
    return out


def _pseudo(raw, cls, rpn=None, precision=None):
    counts = dict(raw=dict(zip(NAMES, raw)), cls=dict(zip(NAMES, cls)),
                  rpn=dict(zip(NAMES, rpn or cls)))
    return dict(counts=counts, precision=precision,
                thresholds=dict(rpn=0.5, cls=0.5), iters=(601, 800))


def _competence(precision_by_class, num_gt=40, boxes=50):
    """class_competence rows: a class is competent when its precision at
    0.3 reaches 0.5 with 90% confidence (Wilson, on ``boxes`` kept)."""
    from mmext.runs.teacher_competence import class_competence
    tp = {n: [round(p * boxes)] * 2 for n, p in precision_by_class.items()}
    fp = {n: [boxes - tp[n][0]] * 2 for n in precision_by_class}
    record = dict(classes=list(precision_by_class), thresholds=[0.1, 0.3],
                  num_gt={n: num_gt for n in precision_by_class}, tp=tp,
                  fp=fp)
    rows = {r['class']: r for r in class_competence(record)}
    rows.update(_source='test', _target=0.5, _confidence=0.9)
    return rows


def _starved_evidence(**kw):
    return Evidence(NAMES, validation=_validation([0.3, 0.1, 0.1, 0.5]),
                    pseudo=_pseudo([100, 50, 30, 80], [5, 0, 0, 10]), **kw)


def test_pseudo_starved_is_gated_on_competence():
    errors = [_error_row(n, missed=m) for n, m in
              zip(NAMES, [0.1, 0.2, 0.04, 0.0])]
    ev = _starved_evidence(errors=errors, competence=_competence(dict(
        Severe_Rust=0.8, Chipped=0.36, Broken=0.7, Tip_Wear=0.9)))
    found = {f.rule: f for f in fd.pseudo_starved(ev)}
    # Broken reaches precision 0.7 on 50 boxes: its threshold is too strict
    strict = found['pseudo_starved']
    assert strict.classes == ['Broken']
    assert strict.action == 'calibrated_thresholds'
    assert 'at score 0.10' in strict.evidence
    # each finding states the problem of its own classes only
    assert 'Broken 30 raw teacher boxes' in strict.evidence
    assert 'Chipped 50' not in strict.evidence
    # Chipped at precision 0.36: never lowered, supervised side instead
    weak = found['teacher_cannot_detect']
    assert weak.classes == ['Chipped'] and weak.action == 'supervised_first'
    assert 'best precision 0.36' in weak.evidence
    assert 'Chipped 50 raw teacher boxes' in weak.evidence
    assert 'Broken 30' not in weak.evidence
    assert 'would add noise' in weak.title
    # the bound is TIDE's missed-box oracle of the classes, in mAP50
    assert weak.impact == pytest.approx(0.2 / 4)
    assert strict.impact == pytest.approx(0.04 / 4)
    assert strict.impact_metric == weak.impact_metric == 'mAP50'
    assert strict.numbers['stages'] == ['rpn', 'cls']


def test_pseudo_starved_without_competence_recommends_measuring():
    (f,) = fd.pseudo_starved(_starved_evidence())
    assert f.classes == ['Chipped', 'Broken']
    assert f.action == 'measure_competence' and f.strength == 'weak'
    assert 'Chipped 50 raw teacher boxes' in f.evidence
    assert f.impact is None  # no error breakdown: nothing bounds it


def test_pseudo_starved_separates_stages_and_ignores_unscored_classes():
    ev = Evidence(NAMES, pseudo=_pseudo([100, 0, 30, 80], [5, 0, 0, 10],
                                        rpn=[5, 0, 3, 10]))
    (f,) = fd.pseudo_starved(ev)  # Chipped has no raw box: not starved
    assert f.classes == ['Broken'] and f.numbers['stages'] == ['cls']
    ev = Evidence(NAMES, pseudo=_pseudo([100, 5, 30, 80], [5, 1, 2, 10]))
    assert fd.pseudo_starved(ev) == []
    assert fd.pseudo_starved(Evidence(NAMES)) == []


def test_pseudo_starved_on_few_boxes_is_moderate():
    ev = Evidence(NAMES, pseudo=_pseudo([100, 5, 30, 80], [5, 0, 2, 10]),
                  competence=_competence(dict(Chipped=0.9)))
    (f,) = fd.pseudo_starved(ev)
    assert f.classes == ['Chipped'] and f.strength == 'moderate'
    assert f.action == 'calibrated_thresholds'


def test_noisy_pseudo_labels_gated():
    prec = dict(zip(NAMES, [0.9, 0.3, None, 0.45]))
    ev = Evidence(NAMES, pseudo=_pseudo([100] * 4, [40, 30, 0, 3],
                                        precision=prec),
                  competence=_competence(dict(Chipped=0.3)))
    (f,) = fd.noisy_pseudo_labels(ev)
    assert f.classes == ['Chipped']  # Tip_Wear: 3 boxes, too few to judge
    assert f.rule == 'teacher_cannot_detect'
    assert f.action == 'supervised_first'
    ev.competence = _competence(dict(Chipped=0.8))
    (f,) = fd.noisy_pseudo_labels(ev)
    assert f.action == 'calibrated_thresholds'
    prec['Chipped'] = 0.6
    assert fd.noisy_pseudo_labels(ev) == []


def test_gt_without_rpn_positive():
    anchors = {n: dict(num_gts=30, pos_per_gt=4.0, no_pos_share=s)
               for n, s in zip(NAMES, [0.0, 0.25, 0.09, 0.5])}
    anchors['all'] = dict(num_gts=120, pos_per_gt=4.0, no_pos_share=0.2)
    (f,) = fd.gt_without_rpn_positive(Evidence(NAMES, anchors=anchors))
    assert f.classes == ['Tip_Wear', 'Chipped'] and f.action == 'anchors'
    assert '25% of 30 GT boxes' in f.evidence
    anchors['Chipped']['no_pos_share'] = anchors['Tip_Wear'][
        'no_pos_share'] = 0.0
    assert fd.gt_without_rpn_positive(Evidence(NAMES, anchors=anchors)) == []


def _error_row(name, **dap):
    row = {'class': name, 'ap50': 0.5}
    for t in fd.ERROR_CAUSES:
        row[f'dap_{t}'] = dap.get(t, 0.0)
        row[f'n_{t}'] = 10 if dap.get(t) else 0
    return row


def test_dominant_error_groups_classes_by_their_costliest_type():
    rows = [_error_row('Severe_Rust', missed=0.2, background=0.05),
            _error_row('Chipped', background=0.1, missed=0.05),
            _error_row('Broken', missed=0.08),
            _error_row('Tip_Wear', duplicate=0.01),  # below MIN_ERROR_DAP
            dict(_error_row('all', missed=0.5), **{'class': 'all'})]
    found = {f.numbers['type']: f for f in fd.dominant_error(
        Evidence(NAMES, errors=rows))}
    assert set(found) == {'missed', 'background'}
    assert found['missed'].classes == ['Severe_Rust', 'Broken']
    assert found['missed'].impact == pytest.approx((0.2 + 0.08) / 4)
    assert found['missed'].impact_metric == 'mAP50'
    assert found['background'].classes == ['Chipped']
    # background errors are never answered with a pseudo-label threshold
    assert found['background'].action == 'train_longer'
    assert fd.dominant_error(Evidence(NAMES, errors=rows[3:4])) == []


def test_score_threshold_mismatch():
    sweep = {n: dict(best_f1_thr=t, best_f1=0.5, f1_at_deployed=0.3)
             for n, t in zip(NAMES, [0.3, 0.1, 0.4, 0.75])}
    sweep['all'] = dict(best_f1_thr=0.3, best_f1=0.5, f1_at_deployed=0.5,
                        deployed_thr=0.3)
    (f,) = fd.score_threshold_mismatch(Evidence(NAMES, sweep=sweep))
    assert f.classes == ['Chipped', 'Tip_Wear']
    sweep['Chipped']['best_f1_thr'] = sweep['Tip_Wear']['best_f1_thr'] = 0.3
    assert fd.score_threshold_mismatch(Evidence(NAMES, sweep=sweep)) == []


def test_low_efficiency():
    rows = [dict(source='teacher', **{'class': 'Chipped'}, boxes=60,
                 share=0.4, ap=0.02, efficiency=0.05, status='critical'),
            dict(source='teacher', **{'class': 'Broken'}, boxes=20,
                 share=0.1, ap=0.2, efficiency=2.0, status='strong')]
    (f,) = fd.low_efficiency(Evidence(NAMES, efficiency=rows))
    assert f.classes == ['Chipped'] and f.strength == 'weak'
    assert fd.low_efficiency(Evidence(NAMES, efficiency=rows[1:])) == []


def test_loss_unstable_from_windows_and_nonfinite():
    quiet = [dict(iter=i, losses=dict(loss=dict(level=1.0, level_alarm=0,
                                                noise_alarm=0)))
             for i in (300, 400)]
    assert fd.loss_unstable(Evidence(NAMES, stability=quiet)) == []
    loud = quiet + [dict(iter=500, losses=dict(unsup_loss=dict(
        level=2.0, rise=1.0, level_alarm=1, noise_alarm=0)))]
    (f,) = fd.loss_unstable(Evidence(NAMES, stability=loud))
    assert 'unsup_loss became unstable at iteration 500' == f.title
    (f,) = fd.loss_unstable(Evidence(NAMES, nonfinite=['non-finite loss']))
    assert f.strength == 'certain'


def test_ap_fell_from_best():
    val = _validation([0.3, 0.1, 0.1, 0.5], best={'Chipped': 0.2,
                                                  'Broken': 0.11})
    (f,) = fd.ap_fell_from_best(Evidence(NAMES, validation=val))
    assert f.classes == ['Chipped'] and 'at iteration 400' in f.evidence
    val = _validation([0.3, 0.1, 0.1, 0.5])
    assert fd.ap_fell_from_best(Evidence(NAMES, validation=val)) == []


def test_config_error_is_certain_and_focal_maps_to_softmax_focal():
    items = [dict(severity='error', check='loss-activation',
                  key='model.roi_head.bbox_head.loss_cls',
                  message='FocalLoss (sigmoid) in a softmax head'),
             dict(severity='warning', check='anchors', key='x', message='m')]
    (f,) = fd.config_errors(Evidence(NAMES, config_findings=items))
    assert f.strength == 'certain' and f.action == 'softmax_focal'


def test_ranking_strength_then_impact_and_registry():
    def make(strength, impact):
        return Finding('r', 't', strength, impact, [], '', '', '', 'none', '')
    order = fd.rank_findings([make('weak', 0.9), make('strong', 0.01),
                              make('strong', None), make('certain', None),
                              make('strong', 0.2)])
    assert [(f.strength, f.impact) for f in order] == [
        ('certain', None), ('strong', 0.2), ('strong', 0.01),
        ('strong', None), ('weak', 0.9)]
    assert set(fd.RULES) >= {'pseudo_starved', 'gt_without_rpn_positive',
                             'dominant_error', 'loss_unstable'}
    with pytest.raises(KeyError):
        fd.finding_rule('pseudo_starved')(lambda ev: [])
    assert apply_rules(Evidence(NAMES)) == []  # nothing measured, no finding
