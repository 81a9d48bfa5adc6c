"""Evaluation code that wraps official scorers (pycocotools, sacreBLEU, ...)."""
