"""Inbound media: background download, checks, sealed storage, serving to workspace members."""
