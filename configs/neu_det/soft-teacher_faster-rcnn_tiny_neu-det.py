# Soft Teacher on the NEU surface-defect database (../shared/data/neu-det).
#
# The tiny CPU model and the pipelines of the demo config (its 224-288 px
# train scale is 1.1-1.4x NEU-DET's 200 px images), on NEU-DET's plain VOC
# folders, read by mmext's VOCFolderDataset (mmdet's VOCDataset needs the VOC
# devkit layout; NEU-DET's XMLs also leave the extension out of <filename>).
# Split (the dataset has no official one): every 10th image of ANNOTATIONS/
# is labeled, the other 9 are the unlabeled pool (their boxes exist but the
# unsup pipeline loads none), Validation_Annotations/ (30 images) is val/test.
_base_ = ['../soft_teacher/soft-teacher_faster-rcnn_tiny_demo.py']

classes = ('crazing', 'inclusion', 'patches', 'pitted_surface',
           'rolled-in_scale', 'scratches')
metainfo = dict(classes=classes)
data_root = '../shared/data/neu-det/'

model = dict(detector=dict(roi_head=dict(bbox_head=dict(num_classes=len(classes)))))

# CocoMetric builds its ground truth from the samples when there is no COCO
# json: PackDetInputs must pass the raw 'instances' through.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale={{_base_.test_scale}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'instances')),
]

neu_folder = dict(type='VOCFolderDataset', data_root=data_root, metainfo=metainfo)
train_folder = dict(neu_folder, ann_file='ANNOTATIONS/', data_prefix=dict(img='IMAGES/'),
                    num_parts=10)
labeled_dataset = dict(
    train_folder,
    parts=[0],
    filter_cfg=dict(filter_empty_gt=True, min_size=0),
    pipeline={{_base_.sup_pipeline}})
unlabeled_dataset = dict(
    train_folder,
    parts=[1, 2, 3, 4, 5, 6, 7, 8, 9],
    filter_cfg=dict(filter_empty_gt=False),
    pipeline={{_base_.unsup_pipeline}})

train_dataloader = dict(
    dataset=dict(type='ConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]))
val_dataloader = dict(
    dataset=dict(
        neu_folder,
        _delete_=True,
        ann_file='Validation_Annotations/',
        data_prefix=dict(img='Validation_Images/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', metric='bbox', classwise=True)
test_evaluator = val_evaluator
