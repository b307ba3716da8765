"""tools/ablate.py: each config is BASE plus exactly one group of changes."""
import json
import os

import pytest

from analysis_fixtures import load_tool
from helpers import DEMO_CONFIG, ROOT
from mmext.experiments.ablation import BOOKKEEPING, write_ablation
from mmext.experiments.config_diff import diff_configs
from mmext.utils import run_cli

PAIRS = {
    'focal-lower-thr': os.path.join(
        ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo_focal-lower-thr.py'),
    # float -> policy dicts, a new model type, a hook added to a list
    'per-class-thr': os.path.join(
        ROOT, 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo_per-class-thr.py'),
}


def _changes(a, b):
    return {(c.key, repr(c.after)) for c in diff_configs(a, b).changes
            if not BOOKKEEPING.search(c.key)}


@pytest.mark.parametrize('name', sorted(PAIRS))
def test_each_arm_differs_from_base_only_in_its_group(name, tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import mmext  # noqa: F401
    register_all_modules()
    new = PAIRS[name]
    manifest = write_ablation(DEMO_CONFIG, new, str(tmp_path / 'abl'))
    full = diff_configs(DEMO_CONFIG, new)
    arms = [a for a in manifest['arms'] if a['name'].startswith('only-')]
    assert len(arms) == len(full.group_counts()) >= 2
    union = set()
    for arm in arms:
        expected = {(c.key, repr(c.after)) for c in full.changes
                    if c.group == arm['group']}
        got = _changes(DEMO_CONFIG, arm['config'])
        assert got == expected, arm['name']
        union |= got
        cfg = Config.fromfile(arm['config'])
        MODELS.build(cfg.model)  # the config builds
    assert union == _changes(DEMO_CONFIG, new)
    assert [a['name'] for a in manifest['arms']][0] == 'base'
    for arm in manifest['arms']:
        assert set(arm['commands']) == {'train', 'torchrun', 'mmdet_dist',
                                        'mmdet_slurm'}
        assert arm['config'] in arm['commands']['torchrun']
    on_disk = json.loads((tmp_path / 'abl' / 'manifest.json').read_text())
    assert on_disk['compare'].startswith('python tools/compare_runs.py base=')


def test_cli_and_bad_input(tmp_path, capsys):
    tool = load_tool('ablate')
    assert tool.main([DEMO_CONFIG, PAIRS['focal-lower-thr'], '--out-dir',
                      str(tmp_path / 'o')]) == 0
    assert 'only-loss' in capsys.readouterr().out
    for argv, match in (([DEMO_CONFIG, DEMO_CONFIG], 'no change'),
                        ([DEMO_CONFIG, str(tmp_path / 'x.py')], 'no such'),
                        ([DEMO_CONFIG, PAIRS['focal-lower-thr'], '--gpus',
                          '0'], '--gpus')):
        with pytest.raises(SystemExit) as info:
            run_cli(tool.main, argv + ['--out-dir', str(tmp_path / 'o')])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, err
