# NEU-DET with a held-out validation split large enough to rank six classes.
#
# The 30-image Validation folder gives 5 boxes per class: any per-class AP
# difference on it is noise. Here ANNOTATIONS/ (1,770 images) is split into
# 20 interleaved parts (image i of the sorted XMLs is in part i % 20):
# parts 0-1 labeled (177 images, 10%), parts 2-5 validation and test
# (354 images), parts 6-19 the unlabeled pool (1,239 images; their boxes are
# never loaded by the unsup pipeline).
_base_ = ['./soft-teacher_faster-rcnn_tiny_neu-det.py']

split = dict(type='VOCFolderDataset', data_root={{_base_.data_root}},
             metainfo={{_base_.metainfo}}, ann_file='ANNOTATIONS/',
             data_prefix=dict(img='IMAGES/'), num_parts=20)

train_dataloader = dict(dataset=dict(datasets=[
    dict(split, parts=[0, 1], filter_cfg=dict(filter_empty_gt=True, min_size=0),
         pipeline={{_base_.sup_pipeline}}),
    dict(split, parts=list(range(6, 20)), filter_cfg=dict(filter_empty_gt=False),
         pipeline={{_base_.unsup_pipeline}}),
]))
val_dataloader = dict(dataset=dict(split, parts=[2, 3, 4, 5]))
test_dataloader = val_dataloader
