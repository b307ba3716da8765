# The user's seed-004 "solution" applied in one step, as a config_diff example:
# focal losses in both heads (configs/focal: activation-correct versions) AND
# the user's pseudo-label thresholds 0.4/0.35/0.35 (initial/rpn/cls) at once.
# `tools/config_diff.py` on the demo config vs this one flags the focal switch
# and the thresholds changed together with the loss (high risk): two effects
# that cannot be told apart after training.
_base_ = ['../focal/soft-teacher_faster-rcnn_tiny_demo_focal.py']

model = dict(
    semi_train_cfg=dict(
        pseudo_label_initial_score_thr=0.4,
        rpn_pseudo_thr=0.35,
        cls_pseudo_thr=0.35))
