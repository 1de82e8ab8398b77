"""Load on `clickbait serve`: concurrent clients on 127.0.0.1, bounded in requests and time.

Prints p50/p95/p99 latency, requests/s, errors and the server's RSS before and after (before: after a warm-up of one
request per client).
`--max-parallel 1 2 16` compares how many requests the server lets compute at once (1 is a lock). `--kill` instead
SIGKILLs the server mid-load, restarts it on the same port, and checks it serves again and gives the same headlines
for the same seed as before the kill.

    .venv/bin/python bench/serve_load.py [--clients 16] [--requests 50] [--n 20] [--max-parallel 2] [--kill]
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def start(port: int, max_parallel: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "clickbait.cli", "serve", "--port", str(port), "--max-parallel",
                             str(max_parallel)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not come up in 120 s")


def load(url: str, clients: int, requests: int, n: int, time_limit: float) -> tuple[list[float], int]:
    """`clients` threads, each sending up to `requests` generate requests for `n` headlines; stops at time_limit."""
    latencies, errors, lock, stop_at = [], [0], threading.Lock(), time.time() + time_limit

    def client(k: int) -> None:
        with httpx.Client(timeout=120) as http:
            for i in range(requests):
                if time.time() > stop_at:
                    return
                t = time.time()
                try:
                    ok = http.post(f"{url}/api/generate", json={"n": n, "seed": 1000 * k + i}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    (latencies.append(time.time() - t) if ok else errors.__setitem__(0, errors[0] + 1))
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latencies, errors[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=50, help="per client")
    p.add_argument("--n", type=int, default=20, help="headlines per request")
    p.add_argument("--max-parallel", type=int, nargs="+", default=[2])
    p.add_argument("--time-limit", type=float, default=600, help="seconds of load per run, at most")
    p.add_argument("--kill", action="store_true")
    args = p.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if args.kill:
        proc = start(port, args.max_parallel[0])
        before = httpx.post(f"{url}/api/generate", json={"n": 5, "seed": 7}, timeout=120).json()["headlines"]
        box = {}
        loader = threading.Thread(target=lambda: box.update(r=load(url, args.clients, args.requests, args.n, 60)))
        loader.start()
        time.sleep(5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loader.join()
        print(f"killed mid-load: {len(box['r'][0])} requests served, {box['r'][1]} failed (the kill)")
        t = time.time()
        proc = start(port, args.max_parallel[0])
        print(f"restarted in {time.time() - t:.1f} s")
        after = httpx.post(f"{url}/api/generate", json={"n": 5, "seed": 7}, timeout=120).json()["headlines"]
        lat, errors = load(url, 4, 5, args.n, 120)
        print(f"after restart: {len(lat)} requests served, {errors} errors; same seed, same headlines: "
              f"{[h['text'] for h in after] == [h['text'] for h in before]}")
        proc.terminate()
        proc.wait()
        return
    for parallel in args.max_parallel:
        proc = start(port, parallel)
        load(url, args.clients, 1, args.n, args.time_limit)  # warm-up: one request per client, then measure
        rss_before = rss_mb(proc.pid)
        t = time.time()
        lat, errors = load(url, args.clients, args.requests, args.n, args.time_limit)
        wall = time.time() - t
        rss_after = rss_mb(proc.pid)
        q = np.percentile(lat, [50, 95, 99]) if lat else [float("nan")] * 3
        print(json.dumps({"max_parallel": parallel, "clients": args.clients, "requests": len(lat) + errors,
                          "headlines_per_request": args.n, "p50_s": round(q[0], 3), "p95_s": round(q[1], 3),
                          "p99_s": round(q[2], 3), "requests_per_s": round(len(lat) / wall, 2), "errors": errors,
                          "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(rss_after, 1),
                          "rss_growth": round(rss_after / rss_before - 1, 3), "seconds": round(wall, 1)}))
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
