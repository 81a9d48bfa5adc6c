"""Detection-family data (boxes, masks, keypoints): COCO, COCO-format, VOC and the embedded shapes."""
