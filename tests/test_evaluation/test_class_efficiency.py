"""Class efficiency: the user's seed-004 table, and AP read from real runs."""
import json
import shutil

import pytest

from analysis_fixtures import load_tool
from mmext.evaluation.class_efficiency import class_efficiency, status_word
from mmext.runs.validations import (classwise_ap, pick_validation,
                                           read_work_dir_validations)
from mmext.utils import MMExtError, run_cli

# The user's numbers (seed 004): training boxes and COCO AP per class.
SEED_COUNTS = dict(Severe_Rust=1343, Chipped=933, Broken=787, Tip_Wear=920,
                   Scratched=882)
SEED_AP = dict(Severe_Rust=0.006, Chipped=0.032, Broken=0.252, Tip_Wear=0.158,
               Scratched=0.098)
# ... and the table they computed by hand: share and efficiency.
SEED_TABLE = dict(Severe_Rust=('27.6%', '0.02x'), Chipped=('19.2%', '0.17x'),
                  Broken=('16.2%', '1.56x'), Tip_Wear=('18.9%', '0.84x'),
                  Scratched=('18.1%', '0.54x'))


def seed_annotations(path):
    """A COCO json with exactly the user's box counts (one box per image)."""
    images, anns = [], []
    for c, (name, n) in enumerate(SEED_COUNTS.items()):
        for _ in range(n):
            i = len(images) + 1
            images.append(dict(id=i, file_name=f'{i}.jpg', width=64,
                               height=64))
            anns.append(dict(id=i, image_id=i, category_id=c + 1,
                             bbox=[4, 4, 20, 10], area=200, iscrowd=0))
    cats = [dict(id=c + 1, name=n) for c, n in enumerate(SEED_COUNTS)]
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=cats)))
    return str(path)


def test_reproduces_the_users_table(tmp_path, capsys):
    ann = seed_annotations(tmp_path / 'train.json')
    metrics = tmp_path / 'metrics.json'
    # key names as mmdet 3.3 CocoMetric(classwise=True) writes them
    metrics.write_text(json.dumps(
        {f'coco/{n}_precision': ap for n, ap in SEED_AP.items()}
        | {'coco/bbox_mAP': 0.109}))
    out = tmp_path / 'out'
    assert load_tool('class_efficiency').main(
        ['--ann', ann, '--metrics', str(metrics), '--out-dir', str(out)]) == 0
    md = (out / 'class_efficiency.md').read_text().splitlines()[2:]
    cells = [[c.strip() for c in line.strip('|').split('|')] for line in md]
    assert [c[1] for c in cells] == [
        'Severe_Rust', 'Chipped', 'Scratched', 'Tip_Wear', 'Broken']
    for c in cells:
        assert (c[3], c[5]) == SEED_TABLE[c[1]]
        assert int(c[2]) == SEED_COUNTS[c[1]]
    assert [c[6] for c in cells] == ['critical', 'critical', 'weak', 'ok',
                                     'strong']
    report = json.loads((out / 'class_efficiency.json').read_text())
    assert report['spearman_boxes_ap']['eval'] < 0
    assert 'most data perform worst' in capsys.readouterr().out
    assert (out / 'class_efficiency.png').stat().st_size > 0
    csv_lines = (out / 'class_efficiency.csv').read_text().splitlines()
    assert csv_lines[0] == 'source,class,boxes,share,ap,efficiency,status'


def test_efficiency_formula_and_configurable_status():
    rows = class_efficiency(dict(a=30, b=10), dict(a=0.3, b=float('nan')),
                            thresholds=(0.5, 1.0, 2.0))
    # share a = 0.75 -> 0.3 / 0.75 = 0.4; b has no AP and sorts last
    assert rows[0]['efficiency'] == pytest.approx(0.4)
    assert rows[0]['status'] == 'critical'
    assert rows[1]['status'] == 'no AP'
    assert status_word(0.4, (0.1, 0.2, 0.3)) == 'strong'
    with pytest.raises(ValueError):
        class_efficiency(dict(a=1), dict(a=0.1), thresholds=(1.0, 0.5, 2.0))


def test_teacher_and_student_from_a_real_log(demo_eval_run, tmp_path):
    run = demo_eval_run
    classes = tuple(SEED_COUNTS)
    record = pick_validation(read_work_dir_validations(run['work_dir']))
    per_model = classwise_ap(record, classes)
    assert set(per_model) == {'teacher', 'student'}
    assert set(per_model['teacher']) == set(classes)
    # the text log gives the same numbers (4 decimals) when scalars.json
    # is gone
    copy = tmp_path / 'copy'
    shutil.copytree(run['work_dir'], copy,
                    ignore=shutil.ignore_patterns('vis_data', '*.pth'))
    from_text = classwise_ap(
        pick_validation(read_work_dir_validations(str(copy))), classes)
    for model in ('teacher', 'student'):
        for name in classes:
            assert from_text[model][name] == pytest.approx(
                per_model[model][name], abs=5e-5)
    out = tmp_path / 'out'
    assert load_tool('class_efficiency').main([
        '--config', run['config'], '--data-root', run['data_root'],
        '--work-dir', run['work_dir'], '--metrics', run['metrics'],
        '--out-dir', str(out)
    ]) == 0
    rows = json.loads((out / 'class_efficiency.json').read_text())['rows']
    assert {r['source'] for r in rows} == {
        'eval', 'log teacher @0', 'log student @0'}  # validation at iter 0
    # counts are the labeled train set's boxes, read through mmext.data
    from mmext.data import load_boxes_from_config
    counts = load_boxes_from_config(
        _with_root(run['config'], run['data_root'])).class_counts()
    assert {r['class']: r['boxes'] for r in rows} == counts


def _with_root(config, data_root):
    from mmext.utils.config import load_config, set_data_root
    return set_data_root(load_config(config), data_root)


def test_missing_inputs_are_one_line(tmp_path, capsys):
    ann = seed_annotations(tmp_path / 'train.json')
    tool = load_tool('class_efficiency')
    for argv in (['--ann', ann],
                 ['--ann', ann, '--work-dir', str(tmp_path / 'nope')],
                 ['--ann', ann, '--metrics', str(tmp_path / 'no.json')]):
        with pytest.raises(SystemExit) as exc:
            run_cli(tool.main, argv)
        assert exc.value.code == 2
        assert capsys.readouterr().err.strip().count('\n') == 0


def test_pick_last_or_best_validation():
    records = [{'teacher/coco/bbox_mAP': 0.2, 'step': 400},
               {'teacher/coco/bbox_mAP': 0.3, 'step': 800},
               {'teacher/coco/bbox_mAP': 0.25, 'step': 1200}]
    assert pick_validation(records)['step'] == 1200
    assert pick_validation(records, 'best')['step'] == 800
    with pytest.raises(MMExtError):
        pick_validation(records, 'best', 'nope/key')


@pytest.mark.parametrize('bad', [55.91, float('inf'), 1.2])
def test_ap_in_percent_or_above_one_is_an_error(bad):
    counts = {'a': 10, 'b': 30}
    with pytest.raises(MMExtError, match=r'eval: AP of a is .* given in '
                       r'percent\?'):
        class_efficiency(counts, {'a': bad, 'b': 0.4}, 'eval')
    rows = class_efficiency(counts, {'a': float('nan'), 'b': 1.0}, 'eval')
    assert {r['class']: r['status'] for r in rows}['a'] == 'no AP'
