"""Arabic-first email newsletter and digest engine."""

__version__ = "0.1.0"
