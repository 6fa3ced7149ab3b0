"""Data-subject requests: intake, verification, the 30-day clock, decisions.

See docs/privacy-requests.md.
"""
