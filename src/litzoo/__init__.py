"""litzoo: a config-driven training platform for vision and NLP on Lightning and Hydra.

Importing this package is cheap on purpose: nothing here imports torch, lightning
or timm, so `train.py --help` and config printing stay fast.
"""

__version__ = "0.1.0"
