"""The subscriber web app: tracking, unsubscribe, preferences, confirmation, view in browser."""

from __future__ import annotations

from digest.web.app import create_app, serve

__all__ = ["create_app", "serve"]
