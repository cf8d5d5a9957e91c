"""Shared test helpers: worlds of data, servers on loopback, samples."""
