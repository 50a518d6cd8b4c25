"""Serve a directory over real HTTP on a local port, for the scraper's tests and `make demo`.

The crawler is only trustworthy if it is exercised against a real socket (robots.txt, status codes,
timing), so this wraps the standard library's file server in a context manager that picks a free port.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

logger = logging.getLogger(__name__)


class QuietHandler(SimpleHTTPRequestHandler):
    """File handler that logs requests at DEBUG instead of writing every line to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


@contextmanager
def serve_directory(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    handler_class: type[SimpleHTTPRequestHandler] = QuietHandler,
) -> Iterator[str]:
    """Serve `root` in a background thread and yield its base URL (no trailing slash).

    port=0 lets the OS pick a free port, so parallel test runs never collide. `handler_class` lets
    tests record or script requests on top of plain file serving.
    """
    handler = functools.partial(handler_class, directory=str(root))
    server = ThreadingHTTPServer((host, port), handler)
    # A short poll interval keeps shutdown() fast; the default 0.5 s adds up across many test servers.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"static-server-{root.name}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
