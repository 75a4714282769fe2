"""Publish benchmark: download vs nginx, zip streaming, upload with SHA-512; prints a table.

Run:  .venv/bin/python bench/bench_downloads.py [--size-mib 1024] [--files 10000] [--runs 5]
It installs Debian's nginx if missing (apt-get), starts it with a private config on a loopback
port, starts `matterhub serve` on another, and measures with curl (one client, the same for
both servers). Results go to bench/results/downloads.json. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def ensure_nginx() -> str:
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(path).exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=True)
    return path


def start_nginx(root: Path, port: int, work: Path) -> subprocess.Popen[bytes]:
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
""")
    proc = subprocess.Popen([ensure_nginx(), "-c", str(conf), "-p", str(work)])
    wait_port(port)
    return proc


def curl(*args: str) -> tuple[float, float, int]:
    """(seconds, bytes/s, bytes) as curl measured them."""
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-S",
            "-f",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total} %{size_download} %{size_upload} %{http_code}",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    seconds, down, up = float(out[0]), float(out[1]), float(out[2])
    size = max(down, up)
    return seconds, size / seconds, int(size)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(name: str, seconds: list[float], nbytes: int) -> dict[str, float | str]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    return {
        "case": name,
        "runs": len(seconds),
        "median_s": median,
        "p95_s": p95,
        "mb_per_s": nbytes / median / 1e6,
        "bytes": nbytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--file-kib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "downloads.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mh-bench-"))
    work.chmod(0o755)  # nginx's worker runs unprivileged and must reach the files
    data_dir = work / "hub"
    env = {
        **os.environ,
        "MATTERHUB_DATA_DIR": str(data_dir),
        "MATTERHUB_LOG_LEVEL": "warning",
        "MATTERHUB_MAX_REQUEST_BYTES": str(4 << 30),
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        big = work / "big.bin"
        block = os.urandom(MIB)
        with big.open("wb") as f:
            for i in range(args.size_mib):
                f.write(block[i % 7 :] + block[: i % 7])
        nbytes = big.stat().st_size

        subprocess.run(
            [BIN / "matterhub", "user", "add", "bench"], env=env, check=True, capture_output=True
        )
        token = subprocess.run(
            [BIN / "matterhub", "token", "create", "bench", "--quiet"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        server = subprocess.Popen(
            [BIN / "matterhub", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(server)
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        auth = ["-H", f"Authorization: Bearer {token}"]
        subprocess.run(
            [
                "curl",
                "-sf",
                "-o",
                "/dev/null",
                *auth,
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps(
                    {
                        "dc": {
                            "creators": [{"creatorName": "Bench, Mark"}],
                            "titles": [{"title": "Big file"}],
                        },
                        "source_name": "big",
                    }
                ),
                f"{base}/api/datasets",
            ],
            check=True,
        )
        rows = []
        # Upload: the server hashes (SHA-512) while it writes; the last one is published.
        up = []
        for i in range(args.runs):
            seconds, _rate, _n = curl(
                "-X",
                "PUT",
                *auth,
                "-H",
                "Content-Type: application/octet-stream",
                "-T",
                str(big),
                f"{base}/api/datasets/big_v1.0/files/up{i}.bin",
            )
            up.append(seconds)
        rows.append(summary("upload 1 GiB (PUT, sha512 on the fly)", up, nbytes))
        subprocess.run(
            [
                "curl",
                "-sf",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                *auth,
                f"{base}/api/datasets/big_v1.0/publish",
            ],
            check=True,
        )
        blob = data_dir / "blobs" / "datasets" / "big" / "v1.0" / "files"
        nginx_port = free_port()
        procs.append(start_nginx(blob, nginx_port, work))
        ours, theirs = [], []
        for _ in range(args.runs):  # side by side, alternating
            theirs.append(curl(f"http://127.0.0.1:{nginx_port}/up0.bin")[0])
            ours.append(curl(f"{base}/api/datasets/big_v1.0/files/up0.bin")[0])
        nginx_row = summary("download 1 GiB — nginx (sendfile)", theirs, nbytes)
        ours_row = summary("download 1 GiB — MatterHub", ours, nbytes)
        ours_row["ratio_vs_nginx"] = nginx_row["median_s"] / ours_row["median_s"]  # type: ignore[operator]
        rows += [nginx_row, ours_row]

        # 10,000 files written in-process (same data folder; SQLite WAL), then zipped over HTTP.
        sys.path.insert(0, str(ROOT / "src"))
        from matterhub.bootstrap import build_services
        from matterhub.core.identity import SYSTEM_IDENTITY
        from matterhub.settings import Settings

        services = build_services(Settings(data_dir=data_dir))
        many = services.datasets
        v = many.create(
            SYSTEM_IDENTITY,
            dc={"creators": [{"creatorName": "Bench, Mark"}], "titles": [{"title": "Many files"}]},
            source_name="many",
            owner="bench",
        )
        payload = os.urandom(args.file_kib * 1024)
        for i in range(args.files):
            many.put_file(SYSTEM_IDENTITY, v.source_id, f"d{i // 1000:02d}/f{i:05d}.dat", payload)
        many.publish(SYSTEM_IDENTITY, v.source_id)
        services.close()
        zips = []
        zip_bytes = 0
        for _ in range(args.runs):
            seconds, _rate, zip_bytes = curl(f"{base}/api/datasets/many_v1.0/archive.zip")
            zips.append(seconds)
        rows.append(
            summary(f"zip stream {args.files:,} files × {args.file_kib} KiB", zips, zip_bytes)
        )
        rss = peak_rss_mib(server.pid)
        result = {
            "rows": rows,
            "server_peak_rss_mib": rss,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print("| case | runs | median s | p95 s | MB/s | vs nginx |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            ratio = f"{r['ratio_vs_nginx']:.2f}×" if "ratio_vs_nginx" in r else ""
            print(
                f"| {r['case']} | {r['runs']} | {r['median_s']:.3f} | {r['p95_s']:.3f} | "
                f"{r['mb_per_s']:.0f} | {ratio} |"
            )
        print(f"\nserver peak RSS: {rss:.0f} MiB (whole run: 1 GiB up/downloads, 10k-file zip)")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
