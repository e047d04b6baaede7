"""Prometheus exporter for RackConnect v2.0 and Managed Operations automation status."""

__version__ = "0.1.0"
