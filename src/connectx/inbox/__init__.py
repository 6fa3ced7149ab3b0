"""The agent inbox's domain: assignment, teams, labels, notes, canned responses, read markers,
snoozing, notifications and the inbox's conversation list (docs/inbox.md)."""
