"""Retention: the schedule in force, the daily run that deletes or anonymises expired data, and
legal holds (docs/retention.md)."""
