"""Background tasks of policies."""
