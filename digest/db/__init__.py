"""Storage: engine, sessions and migrations; the tables and their Core handles; bulk SQL
through the driver; the send lock.
"""
