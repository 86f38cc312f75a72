"""Modules the task tests run in worker processes (tests/test_tasks_processes.py)."""
