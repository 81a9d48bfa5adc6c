"""Semantic-segmentation data: PASCAL VOC (+ SBD aug), ADE20K, Cityscapes, any image + mask folder,
and the embedded generated scenes (VOC layout). The readers of file lists and layouts and the mask
decoding are torch-free; the datasets and datamodules are in `datamodule.py`."""
