"""Background tasks of backups."""
