"""litzoo.models."""
