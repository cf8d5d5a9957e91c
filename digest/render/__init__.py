"""Rendering: templates per language, MJML, segments compiled once and personalised per
recipient.
"""
