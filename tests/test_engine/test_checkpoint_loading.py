"""weights_only loading of mmengine checkpoints: what is allowed, what is not."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mmext.engine import mmengine_checkpoint_loading
from mmext.engine.runner import history_buffer_getattr, is_inside


def test_message_hub_round_trip_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('mmext_test_hub')
    for v in (1.0, 2.0, 4.0):
        hub.update_scalar('train/loss', v)
    hub.update_info('seed', np.int64(3))
    path = str(tmp_path / 'c.pth')
    torch.save({'message_hub': hub.state_dict(), 'w': torch.ones(2)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # torch's default refuses it
    with mmengine_checkpoint_loading():
        ckpt = torch.load(path, weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(7 / 3) and buf.max() == 4.0


class _GetattrExploit:
    """Reaches for an attribute other than a statistics method."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


def test_getattr_is_restricted_to_history_buffer(tmp_path):
    path = str(tmp_path / 'evil.pth')
    for owner, name in ((HistoryBuffer, '__init__'), (np.ndarray, 'tofile')):
        torch.save({'x': _GetattrExploit(owner, name)}, path)
        with mmengine_checkpoint_loading(), pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
    with pytest.raises(pickle.UnpicklingError):
        history_buffer_getattr(HistoryBuffer, '__init__')
    assert history_buffer_getattr(HistoryBuffer, 'mean') == HistoryBuffer.mean


def test_is_inside(tmp_path):
    (tmp_path / 'wd').mkdir()
    assert is_inside(str(tmp_path / 'wd' / 'iter_4.pth'), str(tmp_path / 'wd'))
    assert not is_inside(str(tmp_path / 'wd2' / 'iter_4.pth'), str(tmp_path / 'wd'))
    assert not is_inside(str(tmp_path / 'wd' / '..' / 'x.pth'), str(tmp_path / 'wd'))
