"""Polling: a supervisor owns the account pollers and schedules their regions into the store."""
