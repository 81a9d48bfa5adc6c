"""litzoo.platform."""
