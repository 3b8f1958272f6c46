"""Locust load tests and the concurrency comparison."""
