"""Modules the task tests run in worker processes (tests/worker/test_tasks_processes.py)."""
