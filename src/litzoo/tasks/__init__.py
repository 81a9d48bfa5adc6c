"""litzoo.tasks."""
