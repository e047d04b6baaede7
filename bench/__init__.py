"""The scale benchmark: ``python -m bench --servers 1000,10000,50000``."""
