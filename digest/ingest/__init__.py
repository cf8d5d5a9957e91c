"""Ingest: fetch feeds, parse their documents (in worker processes when big), store the
articles and tag them with topics.
"""
