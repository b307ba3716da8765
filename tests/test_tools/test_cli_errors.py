"""Every foundation tool reports bad input in one line with exit code 2."""
import subprocess
import sys

import pytest

from helpers import ROOT

PY = sys.executable


def _run(*args):
    return subprocess.run([PY, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize('args, needle', [
    (['tools/train.py', 'missing_config.py'], 'missing_config.py: no such config file'),
    (['tools/test.py', 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py',
      'missing.pth'], 'missing.pth: no such checkpoint'),
    (['tools/demo_summary.py', 'no_such_dir'], 'no_such_dir: no such work_dir'),
    (['tools/make_demo_dataset.py', '--out', '/tmp/x', '--image-size', '8'], '--image-size'),
    (['tools/train.py', 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py',
      '--max-iters', '0'], "--max-iters: '0' is not an integer >= 1"),
    (['tools/train.py', 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py',
      '--max-iters', '-5'], "--max-iters: '-5' is not an integer >= 1"),
    (['tools/check_dataset.py', 'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py',
      '--num-samples', '-5'], "--num-samples: '-5' is not an integer >= 1"),
    (['tools/anchor_fit.py', '--ann', 'x.json', '--search-boxes', '0'], "--search-boxes: '0' is not an integer >= 1"),
    (['tools/anchor_fit.py', '--ann', 'x.json', '--scale', '0', '0'], "--scale: '0' is not an integer >= 1"),
    (['tools/anchor_fit.py', '--ann', 'x.json', '--scales', 'nan'], "--scales: 'nan' is not a finite number > 0"),
    (['tools/anchor_fit.py', '--ann', 'x.json', '--ratios', '-1', '1'], "--ratios: '-1' is not a number > 0"),
    (['tools/anchor_fit.py', '--ann', 'x.json', '--pos-iou-thr', '2'], "--pos-iou-thr: '2' is not in (0, 1]"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert 'Traceback' not in proc.stderr


def test_broken_config_names_the_file(tmp_path):
    bad = tmp_path / 'broken.py'
    bad.write_text('model = dict(type=\n')
    proc = _run('tools/train.py', str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and 'Traceback' not in proc.stderr


def test_unknown_option_exits_2():
    proc = _run('tools/make_demo_dataset.py', '--out', '/tmp/x', '--no-such-flag')
    assert proc.returncode == 2 and 'unrecognized arguments' in proc.stderr
    # one line, not argparse's usage block
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_help_shows_an_example():
    proc = _run('tools/train.py', '--help')
    assert proc.returncode == 0 and 'Example' in proc.stdout


def test_latest_checkpoint_passes_over_unnumbered_names_and_binary_marker(
        tmp_path):
    from mmext.utils.run_summary import latest_checkpoint
    for name in ('iter_200.pth', 'iter_1000.pth', 'iter_best.pth',
                 'best_coco_bbox_mAP_iter_400.pth', 'iter_30.pth'):
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_bytes(b'\x00\xff\xfe binary')
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_1000.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_200.pth'))
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_200.pth')
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'iter_best.pth').write_bytes(b'x')
    assert latest_checkpoint(str(empty)) is None


def test_checkpoint_of_another_model_is_an_error_not_map_zero(tmp_path):
    import torch
    ckpt = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(1)},
                'meta': {}}, ckpt)
    proc = _run('tools/test.py',
                'configs/soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py',
                str(ckpt), '--work-dir', str(tmp_path / 'eval'))
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert 'does not match the model of' in lines[-1] and str(ckpt) in lines[-1]
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'eval' / 'metrics.json').exists()


def _exit_of(main, capsys):
    from mmext.utils import run_cli
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [])
    return exc.value.code, capsys.readouterr().err


def test_a_crash_is_exit_3_never_1(capsys, monkeypatch):
    """Exit 1 means "found problems" for the checkers; a bug is 3, one line."""
    monkeypatch.delenv('MMEXT_DEBUG', raising=False)

    def crash(argv):
        raise KeyError('boom')

    code, err = _exit_of(crash, capsys)
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert 'internal error: KeyError' in err and 'Traceback' not in err


def test_os_errors_and_output_paths_are_one_line(tmp_path, capsys):
    import argparse
    from mmext.utils.cli import output_dir, output_file
    blocker = tmp_path / 'a_file'
    blocker.write_text('x')

    def main(argv):
        parser = argparse.ArgumentParser(prog='tool')
        parser.add_argument('--out-dir', type=output_dir)
        parser.add_argument('--out', type=output_file)
        parser.parse_args(argv)
        return 0

    for argv, needle in (
            (['--out-dir', str(blocker)], 'exists and is not a folder'),
            (['--out-dir', str(blocker / 'sub')], 'cannot create the folder'),
            (['--out', str(tmp_path)], 'is a folder, expected a file path')):
        from mmext.utils import run_cli
        with pytest.raises(SystemExit) as exc:
            run_cli(main, argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
        assert needle in err and str(blocker.parent) in err

    def unreadable(argv):
        open(tmp_path)  # IsADirectoryError, an OSError
    code, err = _exit_of(unreadable, capsys)
    assert code == 2 and str(tmp_path) in err


@pytest.mark.parametrize('damage', ['truncated', 'empty'])
def test_corrupt_validation_image_is_bad_input_naming_the_file(
        tiny_demo_root, tmp_path, damage):
    """tools/test.py on a validation set with a corrupt image: a data
    problem (exit 2, the file named), not "a bug in mmext" (exit 3), also
    when the image is read in a data-loader worker process."""
    import json
    import shutil

    import torch

    from mmext.engine import build_runner
    from mmext.engine.tiny_config import tiny_semi_config
    root = tmp_path / 'data'
    shutil.copytree(tiny_demo_root, root)
    with open(root / 'annotations' / 'val.json') as f:
        victim = root / 'images' / json.load(f)['images'][0]['file_name']
    if not victim.exists():
        victim = next((root / 'images').rglob(victim.name))
    data = victim.read_bytes()
    victim.write_bytes(data[:200] if damage == 'truncated' else b'')
    cfg = tiny_semi_config(str(root), str(tmp_path / 'run'))
    cfg.test_dataloader.num_workers = 1
    cfg.test_dataloader.persistent_workers = False
    config = tmp_path / 'tiny.py'
    cfg.dump(str(config))
    runner = build_runner(cfg)
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': runner.model.state_dict(), 'meta': {}}, ckpt)
    proc = _run('tools/test.py', str(config), str(ckpt), '--work-dir',
                str(tmp_path / 'eval'))
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert victim.name in last and 'cannot be read as an image' in last
    assert 'Traceback' not in proc.stderr
