"""Versioned policy documents, material-change notices and acceptances (docs/policies.md)."""
