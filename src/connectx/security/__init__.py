"""Security signals: sign-in and device records, new-device alerts, anomaly notices to workspace
owners, and operator suspension of workspaces (docs/security-signals.md)."""
