"""A load generator for the server rows: ``python -m benchmarks.load URL METHOD PATH C N``.

``C`` threads, each with one keep-alive ``http.client`` connection (the standard library's, the
cheapest client Python has, so that the generator's own cost stays small beside the server's),
send ``N`` requests between them: ``GET PATH`` or ``POST PATH`` with a small assistant body. It
prints one JSON line: requests sent, errors (a status other than 200, or a connection failure,
each followed by a new connection), and its wall time. Its CPU time is measured from outside
(``benchmarks/launch.py``) and shown apart from the server's.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit

KEY = "sk-bench-0123456789abcdef"
BODY = json.dumps(
    {
        "model": "gpt-4-turbo",
        "name": "load",
        "instructions": "Answer briefly. " * 20,
        "tools": [{"type": "code_interpreter"}],
        "metadata": {"team": "bench"},
    }
).encode()


def main(argv: list[str]) -> int:
    url, method, path, concurrency, total = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    prefix = parts.path.rstrip("/")
    headers = {
        "Authorization": f"Bearer {KEY}",
        "OpenAI-Beta": "assistants=v1",
        "Content-Type": "application/json",
    }
    lock = threading.Lock()
    left = [total]
    errors = [0]
    first_error: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            try:
                conn.request(
                    method, prefix + path, body=BODY if method == "POST" else None, headers=headers
                )
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
                detail = f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            if not ok:
                with lock:
                    errors[0] += 1
                    first_error[:] = first_error or [detail]
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "requests": total,
                "errors": errors[0],
                "wall_s": wall,
                "first_error": first_error[0] if first_error else "",
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
