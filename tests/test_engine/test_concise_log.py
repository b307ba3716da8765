"""ConciseLogProcessor: the text line without mmext's per-class figures."""
from mmext.engine.concise_log import DEFAULT_TEXT_KEYS, ConciseLogProcessor

LINE = ('Iter(train) [ 20/800]  lr: 2.0000e-03  eta: 0:05:00  time: 0.4000  '
        'data_time: 0.0100  loss: 1.2000  sup_loss_cls: 0.3000  '
        'pseudo/per_img_raw: 12.0000  pseudo/kept_ratio_cls: 0.0200  '
        'pseudo/kept_ratio_cls/Chipped: 0.0000  anchor/rpn_no_pos_share/all: '
        '0.0470  anchor/rpn_no_pos_share/Chipped: 0.1000  stability/cv/loss: '
        '0.3500  stability/z/loss: 1.2000  unsup_loss_cls: 0.2000  '
        'pseudo/precision_cls/Broken: 1.0000')


def test_hidden_families_leave_the_line_and_are_counted():
    out = ConciseLogProcessor(by_epoch=False).concise(LINE)
    for kept in ('loss: 1.2000', 'sup_loss_cls: 0.3000', 'lr: 2.0000e-03',
                 'unsup_loss_cls: 0.2000') + tuple(
                     f'{k}: ' for k in DEFAULT_TEXT_KEYS
                     if k != 'pseudo/precision_cls'):
        assert kept in out, kept
    for hidden in ('per_img_raw', '/Chipped', 'stability/z', '/Broken'):
        assert hidden not in out, hidden
    assert out.endswith('(+5 mmext figures in the visualizer)')
    assert out.startswith('Iter(train) [ 20/800]  ')


def test_a_line_without_mmext_figures_is_unchanged():
    line = 'Iter(train) [ 20/800]  lr: 2.0000e-03  loss: 1.2000'
    assert ConciseLogProcessor(by_epoch=False).concise(line) == line


def test_text_keys_and_prefixes_are_configurable():
    out = ConciseLogProcessor(by_epoch=False, text_keys=['stability/z/loss'],
                              hidden_prefixes=['stability/']).concise(LINE)
    assert 'stability/z/loss: 1.2000' in out and 'stability/cv' not in out
    assert 'pseudo/per_img_raw: 12.0000' in out  # not hidden any more
    assert out.endswith('(+1 mmext figures in the visualizer)')
