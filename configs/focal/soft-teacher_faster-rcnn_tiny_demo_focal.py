# The user's focal-loss setup (seed 004), made correct for a two-stage head.
#
# The user wrote mmdet's sigmoid-only FocalLoss into both heads:
#   R-CNN: FocalLoss(gamma=3.5, alpha=0.75, loss_weight=2.5)
#   RPN:   FocalLoss(gamma=2.5, alpha=0.75, loss_weight=3.0)
# In the R-CNN head that trains the background column as an independent
# sigmoid class while the head (and SoftTeacher's background score
# `scores[:, -1]`) read a softmax; in the RPN head the config lacked
# `use_sigmoid=True`, so RPNHead built 2 softmax channels for a sigmoid loss.
# Same hyper-parameters here, with losses whose activation matches the head.
_base_ = ['../soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py']

model = dict(
    detector=dict(
        rpn_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='SigmoidFocalLoss',
                use_sigmoid=True,  # RPNHead sizes its output from this key
                gamma=2.5,
                alpha=0.75,
                loss_weight=3.0)),
        roi_head=dict(
            bbox_head=dict(
                loss_cls=dict(
                    _delete_=True,
                    type='SoftmaxFocalLoss',
                    use_sigmoid=False,
                    gamma=3.5,
                    alpha=0.75,  # foreground classes 0.75, background 0.25
                    loss_weight=2.5)))))
