# The demo Soft Teacher with adaptive per-class pseudo-label thresholds.
#
# In `make demo` (fixed 0.3/0.5/0.5) Chipped and Broken kept no pseudo label
# at the cls stage: the teacher scores them lower than the easy classes.
# Here the rpn and cls thresholds follow LabelMatch's proportion rule: per
# class, the teacher's recent raw scores are ranked and the threshold is put
# where the number of boxes kept matches what the labeled set says an image
# holds of that class (class share x boxes per image). Until a class has 20
# scores in the window it uses warmup_thr, the demo's 0.5.
#
# The initial threshold comes down to the policies' floor (0.15): a stage
# threshold below the initial one would do nothing. Other policies:
# cls_pseudo_thr=dict(type='gmm', ...) (Consistent-Teacher's mixture), or a
# fixed list per class, e.g. from
#   python tools/plot_pseudo_stats.py work_dirs/demo --write-config OUT.py
_base_ = ['./soft-teacher_faster-rcnn_tiny_demo.py']

# `_delete_=True`: the base config has a float here, and mmengine merges a
# dict into a float only when told to replace it.
proportion = dict(_delete_=True, type='proportion', warmup_thr=0.5,
                  min_scores=20, update_interval=10, window_images=256,
                  floor=0.15, ceiling=0.9, fraction=1.0)
model = dict(
    type='PerClassSoftTeacher',
    semi_train_cfg=dict(
        pseudo_label_initial_score_thr=0.15,
        rpn_pseudo_thr=dict(proportion),
        cls_pseudo_thr=dict(proportion)))

# The base hooks plus PseudoThresholdHook, which updates the policies from
# every process's scores, logs pseudo/thr_<stage>/<class> and keeps the
# thresholds in the checkpoint (restored on resume only).
custom_hooks = [
    dict(type='MeanTeacherHook', momentum=0.01, skip_buffer=False),
    dict(type='PseudoThresholdHook'),
    dict(type='PseudoLabelStatsHook', interval=40,
         gt_ann_file='annotations/train_unlabeled_gt.json'),
    dict(type='LossStabilityHook', window=100, rise_thr=0.5, min_z=4.0,
         noise_ratio_thr=2.0, patience_iters=5000),
    dict(type='ClassAPTrackerHook', watch_classes=['Severe_Rust', 'Chipped'],
         max_map_drop=0.05, max_other_drop=0.01),
    dict(type='AnchorMatchStatsHook', interval=40),
]
