"""Scheduling: the jobs APScheduler runs on time and the one-leader-per-database lock."""
