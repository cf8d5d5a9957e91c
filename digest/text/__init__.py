"""Text without I/O: Arabic normalisation for matching, bidi islands, HTML sanitising,
safe placeholders.
"""
