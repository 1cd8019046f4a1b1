"""Notifiers: callbacks that tell people about a task at once, without waiting for the daily mail."""
