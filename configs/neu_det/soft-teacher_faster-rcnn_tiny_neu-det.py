# Soft Teacher on the NEU surface-defect database (../shared/data/neu-det).
#
# The tiny CPU model of the demo config, on NEU-DET's plain VOC folders, read
# by mmext's VOCFolderDataset (mmdet's VOCDataset needs the VOC devkit
# layout; NEU-DET's XMLs also leave the extension out of <filename>).
# Split (the dataset has no official one): every 10th image of ANNOTATIONS/
# is labeled, the other 9 are the unlabeled pool (their boxes exist but the
# unsup pipeline loads none), Validation_Annotations/ (30 images) is val/test.
_base_ = ['../soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py']

classes = ('crazing', 'inclusion', 'patches', 'pitted_surface',
           'rolled-in_scale', 'scratches')
metainfo = dict(classes=classes)
data_root = '../shared/data/neu-det/'
num_classes = len(classes)

model = dict(detector=dict(roi_head=dict(bbox_head=dict(num_classes=num_classes))))

# 200 px greyscale images (decoded as 3 channels), trained at 1.3-1.6x.
scale = [(320, 256), (320, 320)]
test_scale = (320, 288)
backend_args = None
branch_field = ['sup', 'unsup_teacher', 'unsup_student']
sup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandAugment', aug_space={{_base_.color_space}}, aug_num=1),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='MultiBranch', branch_field=branch_field, sup=dict(type='PackDetInputs')),
]
weak_pipeline = [
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys={{_base_.unsup_meta_keys}}),
]
strong_pipeline = [
    dict(type='RandomResize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomOrder',
        transforms=[
            dict(type='RandAugment', aug_space={{_base_.color_space}}, aug_num=1),
            dict(type='RandAugment', aug_space={{_base_.geometric}}, aug_num=1),
        ]),
    dict(type='RandomErasing', n_patches=(1, 5), ratio=(0, 0.2)),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs', meta_keys={{_base_.unsup_meta_keys}}),
]
unsup_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadEmptyAnnotations'),
    dict(
        type='MultiBranch',
        branch_field=branch_field,
        unsup_teacher=weak_pipeline,
        unsup_student=strong_pipeline),
]
# CocoMetric builds its ground truth from the samples when there is no COCO
# json: PackDetInputs must pass the raw 'instances' through.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'instances')),
]

labeled_dataset = dict(
    type='VOCFolderDataset',
    data_root=data_root,
    metainfo=metainfo,
    ann_file='ANNOTATIONS/',
    data_prefix=dict(img='IMAGES/'),
    num_parts=10,
    parts=[0],
    filter_cfg=dict(filter_empty_gt=True, min_size=0),
    pipeline=sup_pipeline,
    backend_args=backend_args)
unlabeled_dataset = dict(
    type='VOCFolderDataset',
    data_root=data_root,
    metainfo=metainfo,
    ann_file='ANNOTATIONS/',
    data_prefix=dict(img='IMAGES/'),
    num_parts=10,
    parts=[1, 2, 3, 4, 5, 6, 7, 8, 9],
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=unsup_pipeline,
    backend_args=backend_args)

train_dataloader = dict(
    dataset=dict(type='ConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='VOCFolderDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='Validation_Annotations/',
        data_prefix=dict(img='Validation_Images/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='CocoMetric',
    metric='bbox',
    classwise=True,
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
