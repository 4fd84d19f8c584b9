"""What the benchmark scripts share: their Python venv, a free port, a
process's resident memory, and `wrk` (Debian's package) run over a rotating list of URLs with
benches/wrk_rotate.lua, sampling a server's memory while it runs."""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_venv(script, venv="bench-venv", requirements="requirements.txt"):
    """Re-runs `script` in target/VENV, created (or brought up to
    benches/REQUIREMENTS when that file changed) from PyPI first."""
    import sys

    venv = ROOT / "target" / venv
    requirements = ROOT / "benches" / requirements
    stamp = venv / "requirements.txt"
    wanted = requirements.read_text()
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    py = venv / "bin" / "python"
    if not py.exists() or not stamp.exists() or stamp.read_text() != wanted:
        print(f"bench: preparing {venv} ({requirements.name} from PyPI)", flush=True)
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
             str(requirements)],
            check=True,
        )
        stamp.write_text(wanted)
    os.execv(str(py), [str(py), str(script), *sys.argv[1:]])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    """VmRSS of `pid` in KiB (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def ensure_wrk():
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0:
        print("bench: installing wrk (Debian package)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       stdout=subprocess.DEVNULL)
        return shutil.which("wrk")
    raise SystemExit("bench: wrk is missing; run as root so the script can apt-get install wrk")


def wrk(addr, paths, url_file, seconds, connections, threads=2, pid=None, timeout_s=None):
    """Runs wrk over `paths` (written to `url_file`); its JSON summary, with
    the command and, given a server `pid`, its RSS sampled every second."""
    url_file.write_text("\n".join(paths) + "\n")
    cmd = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s"]
    if timeout_s:
        cmd += ["--timeout", f"{timeout_s}s"]
    cmd += ["-s", str(ROOT / "benches" / "wrk_rotate.lua"), f"http://{addr}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "WRK_URLS": str(url_file)})
    samples = []
    while proc.poll() is None:
        if pid:
            samples.append(rss_kb(pid))
        time.sleep(1)
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"bench: wrk failed ({proc.returncode}): {out[-500:]}")
    r = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    r["command"] = " ".join(cmd[:-3]) + " -s benches/wrk_rotate.lua"
    if samples:
        r["rss_mb"] = {"max": max(samples) / 1024, "last": samples[-1] / 1024,
                       "samples": [round(s / 1024) for s in samples]}
    return r
