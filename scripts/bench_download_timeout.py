"""Time a Minari download against local hosts that never answer, for `download_timeout`.

Two servers on 127.0.0.1: `silent` accepts connections and never sends a byte; `half-silent`
answers sdw's reachability check and then never answers huggingface_hub. Each download runs in
a fresh process with HF_ENDPOINT pointing at the server (huggingface_hub reads it at import).

    python scripts/bench_download_timeout.py --timeouts 1 10
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading

CHILD = """
import time
from sdw.data.minari_source import MinariSource
start = time.perf_counter()
try:
    MinariSource("mujoco/hopper/medium-v0", download=True, download_timeout={timeout}).load()
except Exception as e:
    print(f"{{time.perf_counter() - start:.2f}} s  {{type(e).__name__}}: {{str(e)[:160]}}")
"""


def serve(answer_check: bool) -> int:
    """Start a server thread; return its port."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        if answer_check and conn.recv(65536).startswith(b"HEAD /api/datasets?limit=1"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()
        else:
            held.append(conn)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeouts", type=float, nargs="+", default=[1.0, 10.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as minari_dir:
        for name, answer_check in (("silent", False), ("half-silent", True)):
            port = serve(answer_check)
            env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{port}",
                   "MINARI_DATASETS_PATH": minari_dir}
            env.pop("HF_HUB_OFFLINE", None)
            for timeout in args.timeouts:
                out = subprocess.run([sys.executable, "-c", CHILD.format(timeout=timeout)], env=env,
                                     capture_output=True, text=True, check=True).stdout.strip()
                print(f"{name:<11}  download_timeout {timeout:>5g}  {out}", flush=True)


if __name__ == "__main__":
    main()
