"""`python -m digest`: the same command line as the `digest` script."""

from __future__ import annotations

from digest.cli import main

if __name__ == "__main__":
    main()
