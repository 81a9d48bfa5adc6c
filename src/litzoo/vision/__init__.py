"""Vision domain code that datamodules and models both use (transforms, keypoint encoding).
It imports neither."""
