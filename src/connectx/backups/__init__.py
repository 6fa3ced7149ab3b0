"""Encrypted backups of the data and the media store; key material backed up apart; erasures
re-applied on restore (docs/backups.md)."""
