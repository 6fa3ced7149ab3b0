"""Cookies and browser signals: the banner, categories, the recorded choice, Global Privacy
Control (docs/cookies.md)."""
