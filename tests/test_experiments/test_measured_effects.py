"""Measured effects: from compare_runs' output to the investigation report."""
import json

import pytest

from mmext.experiments import measured_effects as me
from mmext.investigation.findings import Evidence, Finding
from mmext.investigation.actions import write_actions
from mmext.investigation.evidence import Context
from mmext.investigation.render import render_markdown


def _compare():
    rows = [dict(arm='stock', metric='final_mAP', **{'class': 'all'},
                 mean=0.24, delta=None, delta_ci_low=None,
                 delta_ci_high=None),
            dict(arm='focal', metric='final_mAP', **{'class': 'all'},
                 mean=0.20, delta=-0.04, delta_ci_low=-0.07,
                 delta_ci_high=-0.01),
            dict(arm='calibrated', metric='final_mAP', **{'class': 'all'},
                 mean=0.25, delta=0.01, delta_ci_low=-0.02,
                 delta_ci_high=0.04)]

    def ap(cls, d, lo, hi):
        return {'class': cls, 'delta': d, 'ci_low': lo, 'ci_high': hi}
    boot = {'focal': {'ap': [ap('a', -0.1, -0.2, -0.02),
                             ap('b', 0.0, -0.05, 0.05)]},
            'calibrated': {'ap': [ap('a', 0.05, 0.01, 0.09),
                                  ap('b', 0.0, -0.05, 0.05)]}}
    return {'rows': rows, 'bootstrap': boot}


def test_regimes_from_compare_and_verdicts(tmp_path):
    regimes = me.regimes_from_compare(_compare(), 'demo', 800, [0, 1],
                                      'python benchmarks/does_it_help.py x')
    by_arm = {r['arm']: r for r in regimes}
    focal, cal = by_arm['focal'], by_arm['calibrated']
    assert focal['action'] == 'softmax_focal'
    assert cal['action'] == 'calibrated_thresholds'
    assert focal['control_mAP'] == 0.24
    assert focal['mAP_ci'] == [-0.07, -0.01]
    assert [c['class'] for c in focal['classes_lower']] == ['a']
    assert me.verdict(focal) == 'hurt' and me.verdict(cal) == 'helped'
    assert 'hurt on demo (800 iterations, from scratch, 2 seeds' in \
        me.describe(focal)
    path = str(tmp_path / 'effects.json')
    me.merge_regimes(regimes, path)
    me.merge_regimes([dict(focal, mAP_delta=-0.05)], path)  # replaces
    stored = me.load_effects(path)
    assert len(stored) == 2
    assert next(r for r in stored if r['arm'] == 'focal')['mAP_delta'] \
        == -0.05
    with open(path) as f:
        assert 'never edit by hand' in json.load(f)['generated_by']


def test_action_measured_to_hurt_is_ranked_last_and_says_so(
        tmp_path, monkeypatch):
    path = str(tmp_path / 'effects.json')
    me.merge_regimes(me.regimes_from_compare(
        _compare(), 'demo', 800, [0, 1], 'cmd'), path)
    monkeypatch.setattr(me, 'EFFECTS_FILE', path)
    ctx = Context(work_dir=str(tmp_path), out_dir=str(tmp_path / 'out'),
                  evidence=Evidence(['a', 'b']))

    def finding(action):
        return Finding('r', 'title', 'strong', None, [], 'ev', 'tool',
                       'cause', action, 'monitor')
    # the focal action comes first by rank, the deploy one second
    actions = write_actions(ctx, [finding('softmax_focal'),
                                  finding('train_longer')])
    assert [a.key for a in actions] == ['train_longer', 'softmax_focal']
    assert actions[1].verdict == 'hurt'
    report = render_markdown(ctx, [finding('softmax_focal'),
                                   finding('train_longer')], actions)
    assert '**Measured to hurt**' in report
    assert 'not measured in mmext' in report  # train_longer has no regime
    assert me.closest_regime('softmax_focal', 0.3)['arm'] == 'focal'
    assert me.closest_regime('anchors') is None


def test_absent_or_broken_file_gives_no_regimes(tmp_path):
    assert me.load_effects(str(tmp_path / 'none.json')) == []
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    assert me.load_effects(str(bad)) == []


@pytest.mark.parametrize('regime, verdict', [
    (dict(mAP_ci=[0.01, 0.05]), 'helped'),
    (dict(mAP_ci=[None, None]), 'no measurable effect'),
    (dict(mAP_ci=[-0.05, -0.01]), 'hurt')])
def test_verdict_from_map_interval(regime, verdict):
    assert me.verdict(regime) == verdict


def test_damaged_entries_are_left_out(tmp_path):
    path = tmp_path / 'effects.json'
    good = me.regimes_from_compare(_compare(), 'demo', 800, [0, 1], 'cmd')
    bad = [dict(good[0], mAP_ci='wide'), dict(good[0], mAP_delta=True),
           dict(good[0], classes_lower=[{'class': 'a', 'delta': 'x'}]),
           'not a dict', dict(good[0], action=None)]
    path.write_text(json.dumps({'regimes': good + bad}))
    loaded = me.load_effects(str(path))
    assert loaded == good
    for regime in loaded:  # every kept entry renders
        assert me.verdict(regime) in ('hurt', 'helped',
                                      'no measurable effect')
        assert regime['dataset'] in me.describe(regime)
