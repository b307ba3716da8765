"""Each piece of SafeHook on its own (mmext.hooks.hook_parts).

The composed SafeHook is exercised by every hook's training, resume and
torchrun tests; here each piece is a hook's only base, so what it does is
not borrowed from another piece.
"""
import json
import types

import numpy as np
import pytest
import torch

from mmext.hooks.hook_parts import (AgreedFailure, CheckpointState,
                                    IsolatedFailures, JsonlResume,
                                    MethodPatching, RankAgreement,
                                    checkpoint_state, failure_isolation)


@pytest.fixture
def logged(monkeypatch):
    """Warnings (level >= 30) the pieces print."""
    seen = []

    def record(msg, logger=None, level=None):
        if (level or 0) >= 30:
            seen.append(msg)

    for module in (failure_isolation, checkpoint_state):
        monkeypatch.setattr(module, 'print_log', record)
    return seen


def _runner(tmp_path=None, iteration=0, resume=False, hooks=()):
    return types.SimpleNamespace(iter=iteration, _resume=resume,
                                 hooks=list(hooks),
                                 work_dir=str(tmp_path) if tmp_path else '.')


# ------------------------------------------------------ failure isolation
class _Fails(IsolatedFailures):
    def __init__(self):
        self.calls, self.released = 0, 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.calls += 1
        raise KeyError('loss_rpn_cls')

    def on_disable(self):
        self.released += 1


def test_isolated_failure_logs_once_and_switches_the_hook_off(logged):
    hook = _Fails()
    for i in range(3):
        assert hook.after_train_iter(_runner(), i) is None
    assert hook.calls == 1 and hook.disabled and hook.released == 1
    assert len(logged) == 1 and 'after_train_iter' in logged[0]
    assert "KeyError: 'loss_rpn_cls'" in hook.failure


def test_isolated_before_train_runs_the_boundary_steps_after_the_subclass():
    order = []

    class _Hook(IsolatedFailures):
        def before_train(self, runner):
            order.append('subclass')

        def _on_train_start(self, runner):
            order.append('piece')

    _Hook().before_train(_runner())
    assert order == ['subclass', 'piece']


# ---------------------------------------------------------- rank agreement
class _Collective(RankAgreement):
    collective = True

    def __init__(self):
        self.iters = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.iters += 1
        return self.all_reduce(np.array([1.0, 2.0]))


def test_rank_agreement_defers_a_model_side_error_to_the_next_reduction(
        logged):
    hook = _Collective()
    hook.after_train_iter(_runner(), 0)
    assert hook.run_deferred('forward', lambda: 1 / 0) is None
    assert not hook.active and not hook.disabled  # quiet, not yet agreed
    hook.after_train_iter(_runner(), 1)
    assert hook.disabled and hook.iters == 1
    assert 'forward' in hook.failure and 'ZeroDivisionError' in hook.failure
    assert len(logged) == 1


def test_rank_agreement_all_reduce_single_process_and_bad_op():
    hook = _Collective()
    out = hook.all_reduce(torch.tensor([[1.0, 2.0]]))
    assert out.shape == (1, 2) and out.dtype == torch.float64
    with pytest.raises(ValueError, match='sum, mean or max'):
        hook.all_reduce(np.zeros(2), op='min')
    hook.defer_failure('here', RuntimeError('x'))
    with pytest.raises(AgreedFailure) as info:
        hook.all_reduce(np.zeros(2))
    assert info.value.where == 'here'


def test_rank_agreement_final_point_disables_on_its_own_rank():
    hook = _Collective()
    hook.defer_failure('after_val', RuntimeError('late'))
    hook.after_train(_runner())
    assert hook.disabled and 'late' in hook.failure


# -------------------------------------------------------- checkpoint state
class _Counter(CheckpointState):
    state_version = 2

    def __init__(self):
        self.count = 0

    def state_dict(self):
        return dict(count=self.count)

    def load_state_dict(self, state, runner):
        self.count = state['count']


def test_checkpoint_state_restored_on_resume_only():
    saved = _Counter()
    saved.count = 7
    checkpoint = {}
    saved.before_save_checkpoint(_runner(hooks=[saved]), checkpoint)
    assert checkpoint['meta']['mmext']['_Counter'] == dict(
        version=2, state=dict(count=7))
    for resume, expected in ((True, 7), (False, 0)):
        hook = _Counter()
        runner = _runner(iteration=4, resume=resume, hooks=[hook])
        hook.after_load_checkpoint(runner, checkpoint)
        assert hook.count == 0  # applied after before_train, not at load
        hook.before_train(runner)
        assert hook.count == expected


def test_checkpoint_state_of_another_version_starts_fresh(logged):
    hook = _Counter()
    checkpoint = {'meta': {'mmext': {'_Counter': dict(version=1, state=dict(
        count=3))}}}
    runner = _runner(resume=True, hooks=[hook])
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train(runner)
    assert hook.count == 0 and len(logged) == 1 and 'version 1' in logged[0]


# ------------------------------------------------------- JSON-lines resume
def test_jsonl_resume_cuts_files_to_the_resumed_iteration(tmp_path):
    path = tmp_path / 'records.jsonl'
    path.write_text(''.join(json.dumps(dict(iter=i)) + '\n'
                            for i in range(1, 6)))

    class _Writer(JsonlResume):
        def jsonl_files(self, runner):
            return [str(path), str(tmp_path / 'absent.jsonl')]

    _Writer().before_train(_runner(iteration=3))
    assert [json.loads(x)['iter'] for x in
            path.read_text().splitlines()] == [1, 2, 3]
    _Writer().before_train(_runner(iteration=0))
    assert path.read_text() == ''


# --------------------------------------------------------- method patching
class _Model:
    def forward(self, x):
        return x


def test_method_patching_gives_methods_back_after_training():
    model, other = _Model(), _Model()

    class _Patch(MethodPatching):
        pass

    hook = _Patch()
    hook.wrap_method(model, 'forward', lambda orig: lambda x: orig(x) + 1)
    assert model.forward(1) == 2 and other.forward(1) == 1
    hook.after_train(_runner())
    assert model.forward(1) == 1 and 'forward' not in model.__dict__


def test_method_patching_restored_on_failure_and_foreign_wrapper_kept():
    model = _Model()

    class _Patch(MethodPatching):
        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            raise RuntimeError('boom')

    hook = _Patch()
    hook.wrap_method(model, 'forward', lambda orig: lambda x: orig(x) * 10)
    hook.after_train_iter(_runner(), 0)
    assert hook.disabled and model.forward(2) == 2

    hook = _Patch()
    hook.wrap_method(model, 'forward', lambda orig: lambda x: orig(x) * 10)
    foreign = lambda x: -x  # noqa: E731 - installed over ours by someone else
    model.forward = foreign
    hook.restore_methods()
    assert model.forward is foreign
