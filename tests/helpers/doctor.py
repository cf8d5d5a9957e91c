"""For `digest doctor`'s tests: settings changed section by section, a self-signed
certificate for a STARTTLS relay on loopback, DKIM keys on disk, a /healthz server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.config import Settings
from tests.helpers.tls import certificate as certificate
from tests.helpers.tls import pem


def tweak(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """`settings` with some keys of some sections replaced: tweak(s, smtp={"port": 2525});
    a top-level value (env) is given as tweak(s, top={"env": "production"})."""
    update: dict[str, Any] = dict(sections.pop("top", {}))
    for section, values in sections.items():
        update[section] = getattr(settings, section).model_copy(update=values)
    return settings.model_copy(update=update)


def rsa_key_file(path: Path, bits: int = 2048) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path.write_bytes(pem(key))
    return key


def ed25519_key_file(path: Path) -> ed25519.Ed25519PrivateKey:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(pem(key))
    return key


@contextmanager
def health_server(
    status: int = 200, body: bytes = b'{"status":"ok","database":"ok"}'
) -> Iterator[str]:
    """An HTTP server on loopback answering GET /healthz with `status` and `body` (404
    elsewhere); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
