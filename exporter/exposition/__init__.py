"""Snapshot -> exposition bytes: the family table, rendering, and pre-compressed parts."""
