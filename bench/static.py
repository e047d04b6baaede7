"""The floor: the same bodies served from memory by a minimal stdlib HTTP server.

Usage: ``python -m bench.static DIR`` with ``text``, ``text.gz``, ``om`` and ``om.gz`` in
DIR; prints the port. It picks the body from Accept and Accept-Encoding and does nothing
else, on the same ``http.server`` the exporter uses.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    folder = Path(sys.argv[1])
    bodies = {name: (folder / name).read_bytes() for name in ("text", "text.gz", "om", "om.gz")}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            om = "openmetrics" in self.headers.get("Accept", "")
            gz = "gzip" in self.headers.get("Accept-Encoding", "")
            body = bodies[("om" if om else "text") + (".gz" if gz else "")]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            if gz:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
