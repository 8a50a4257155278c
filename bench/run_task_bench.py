#!/usr/bin/env python3
"""The measuring half of bench/run-task.sh (which builds, starts the server, pushes the image and prepares
the crun bundle and the podman image, then cleans up after this script whatever happens). Three parts, each
against its peer in the same run:

  latency      RunTask -> RUNNING of one task (cached image, own network namespace), ROUNDS rounds, against
               `crun run` of a prepared busybox bundle running `true` (start to exit) and
               `podman run --rm --network none busybox true`, round by round interleaved (the order rotates).
               Skiff is measured twice: by the client (RunTask sent -> first DescribeTasks showing RUNNING,
               polled every ~2 ms) and from the record (startedAt - createdAt, milliseconds).
  concurrency  CONCURRENCY RunTask calls (count=1) from as many threads at once -> time until all are
               RUNNING, against as many `podman run -d` started in parallel (time until all have returned).
  memory       MEM_TASKS idle `sleep 3600` tasks: host MemAvailable before and after, and what is accounted
               (the tasks' cgroups + conmon PSS + the server's PSS growth), per task; against as many bare
               `crun run -d` containers of the same bundle (their cgroups; no monitor process).

Every task, container and podman container is recorded in IDS_DIR as soon as it exists, so the shell script
can remove it even if this script dies; this script removes what it made itself at the end of each part.
Signed requests are made with botocore's SigV4 signer over one keep-alive connection per thread (boto3's
full client costs ~1 ms of CPU per call, which would compete with the server on 2 cores).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET = "AmazonEC2ContainerServiceV20141113"


class Ecs:
    """A minimal signed ECS JSON 1.1 client on one keep-alive connection (not thread-safe: one per thread)."""

    def __init__(self, endpoint: str, region: str, access_key: str, secret_key: str):
        u = urllib.parse.urlsplit(endpoint)
        self.url = endpoint.rstrip("/") + "/"
        self.host, self.port = u.hostname, u.port or 80
        self.signer = SigV4Auth(Credentials(access_key, secret_key), "ecs", region)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, op: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        req = AWSRequest(method="POST", url=self.url, data=data,
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{TARGET}.{op}"})
        self.signer.add_auth(req)
        for attempt in range(2):
            try:
                self.conn.request("POST", "/", body=data, headers=dict(req.headers.items()))
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        if resp.status != 200:
            raise RuntimeError(f"{op}: HTTP {resp.status}: {raw[:500]!r}")
        return json.loads(raw)


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.ids = Path(a.ids_dir)
        self.ids.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def client(self) -> Ecs:
        return Ecs(self.a.endpoint, self.a.region, os.environ["SKIFF_ROOT_ACCESS_KEY_ID"],
                   os.environ["SKIFF_ROOT_SECRET_ACCESS_KEY"])

    def note(self, kind: str, ident: str) -> None:
        with self.lock, open(self.ids / kind, "a") as f:
            f.write(ident + "\n")

    # -- skiff helpers
    def run_tasks(self, ecs: Ecs, family: str, count: int) -> list[dict]:
        resp = ecs.call("RunTask", {"cluster": self.a.cluster, "taskDefinition": family, "count": count,
                                    "networkConfiguration": {"awsvpcConfiguration": {"subnets": [self.a.subnet]}}})
        if resp.get("failures"):
            raise RuntimeError(f"RunTask failures: {resp['failures']}")
        for t in resp["tasks"]:
            self.note("tasks", t["taskArn"])
        return resp["tasks"]

    def describe(self, ecs: Ecs, arns: list[str]) -> list[dict]:
        out = []
        for i in range(0, len(arns), 100):
            out += ecs.call("DescribeTasks", {"cluster": self.a.cluster, "tasks": arns[i:i + 100]})["tasks"]
        return out

    def wait_all(self, ecs: Ecs, arns: list[str], status: str, timeout: float, interval: float = 0.05) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.describe(ecs, arns)
            bad = [t for t in tasks if t["lastStatus"] == "STOPPED" and status != "STOPPED"]
            if bad:
                raise RuntimeError(f"task stopped instead of becoming {status}: {bad[0].get('stoppedReason')} "
                                   f"{[c.get('reason') for c in bad[0]['containers']]}")
            if all(t["lastStatus"] == status for t in tasks):
                return tasks
            if time.monotonic() > deadline:
                counts: dict = {}
                for t in tasks:
                    counts[t["lastStatus"]] = counts.get(t["lastStatus"], 0) + 1
                raise RuntimeError(f"not all {len(arns)} tasks {status} within {timeout} s: {counts}")
            time.sleep(interval)

    def stop_all(self, ecs: Ecs, arns: list[str], timeout: float = 120) -> None:
        for arn in arns:
            ecs.call("StopTask", {"cluster": self.a.cluster, "task": arn, "reason": "benchmark over"})
        self.wait_all(ecs, arns, "STOPPED", timeout, interval=0.2)

    # -- peers
    def podman(self, *args: str) -> subprocess.CompletedProcess:
        return self._checked(["podman", *self.a.podman_global.split(), *args])

    @staticmethod
    def _checked(argv: list[str]) -> subprocess.CompletedProcess:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:6])}… exited {p.returncode}: {p.stderr.strip()[-500:]}")
        return p

    def bundle_for(self, name: str, args: list[str]) -> Path:
        """A bundle directory for one container: the prepared config with its own args and cgroup, the
        shared read-only rootfs."""
        base = json.loads((Path(self.a.bundle) / "config.json").read_text())
        base["process"]["args"] = args
        base["root"] = {"path": str(Path(self.a.bundle) / "rootfs"), "readonly": True}
        base["linux"]["cgroupsPath"] = f"{self.a.crun_cgroup}/{name}"
        d = Path(self.a.bundles_dir) / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(base))
        return d

    # -----------------------------------------------------------------------------------------------------
    # 1. latency

    def latency(self) -> dict:
        a, ecs = self.a, self.client()
        true_bundle = self.bundle_for("latency-true", ["true"])
        podman_run = ["run", "--rm", "--network", "none", *a.podman_run_args.split(), a.podman_image, "true"]
        res: dict[str, list[float]] = {"skiff_client": [], "skiff_record": [], "crun": [], "podman": [], "fork": []}

        def skiff_once(record: bool) -> None:
            t0 = time.perf_counter()
            [task] = self.run_tasks(ecs, a.family_latency, 1)
            arn = task["taskArn"]
            while True:
                t = ecs.call("DescribeTasks", {"cluster": a.cluster, "tasks": [arn]})["tasks"][0]
                if t["lastStatus"] == "RUNNING":
                    t1 = time.perf_counter()
                    break
                if t["lastStatus"] == "STOPPED":
                    raise RuntimeError(f"latency task stopped: {t.get('stoppedReason')}")
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError("latency task not RUNNING within 60 s")
                time.sleep(float(os.environ.get("LATENCY_POLL", "0.002")))
            if record:
                res["skiff_client"].append((t1 - t0) * 1000)
                res["skiff_record"].append((t["startedAt"] - t["createdAt"]) * 1000)
            self.stop_all(ecs, [arn], timeout=60)

        def crun_once(record: bool, i: int) -> None:
            name = f"lat-{os.getpid()}-{i}"
            self.note("crun", name)
            t0 = time.perf_counter()
            p = subprocess.run(["crun", "--root", a.crun_root, "run", "--bundle", str(true_bundle), name],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            t1 = time.perf_counter()
            if p.returncode != 0:
                raise RuntimeError(f"crun run exited {p.returncode}: {p.stderr}")
            if record:
                res["crun"].append((t1 - t0) * 1000)

        def podman_once(record: bool) -> None:
            t0 = time.perf_counter()
            self.podman(*podman_run)
            t1 = time.perf_counter()
            if record:
                res["podman"].append((t1 - t0) * 1000)

        def fork_once(record: bool) -> None:
            t0 = time.perf_counter()
            subprocess.run(["true"], stdin=subprocess.DEVNULL)
            if record:
                res["fork"].append((time.perf_counter() - t0) * 1000)

        order = ["skiff", "crun", "podman"]
        for i in range(-a.warmup, a.rounds):
            record = i >= 0
            rot = order[i % 3:] + order[:i % 3]
            for which in rot:
                if which == "skiff":
                    skiff_once(record)
                elif which == "crun":
                    crun_once(record, i + a.warmup)
                else:
                    podman_once(record)
            fork_once(record)
            if record and (i + 1) % 10 == 0:
                log(f"latency: {i + 1}/{a.rounds} rounds")
        return res

    # -----------------------------------------------------------------------------------------------------
    # 2. concurrency

    def concurrency(self) -> dict:
        a = self.a
        n = a.concurrency
        clients = [self.client() for _ in range(n)]
        for c in clients:  # connect (and sign once) before the clock starts
            c.call("ListTasks", {"cluster": a.cluster, "maxResults": 1})
        arns: list[str] = []
        errors: list[str] = []
        barrier = threading.Barrier(n + 1)

        def worker(c: Ecs) -> None:
            barrier.wait()
            try:
                [t] = self.run_tasks(c, a.family_idle, 1)
                with self.lock:
                    arns.append(t["taskArn"])
            except Exception as e:  # noqa: BLE001 - reported below
                with self.lock:
                    errors.append(str(e))

        threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        poller = self.client()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        t_calls = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"{len(errors)} RunTask calls failed: {errors[0]}")
        tasks = self.wait_all(poller, list(arns), "RUNNING", 300, interval=0.01)
        t_all = time.perf_counter() - t0
        created = min(t["createdAt"] for t in tasks)
        started = max(t["startedAt"] for t in tasks)
        log(f"concurrency: {n} tasks RUNNING after {t_all:.2f} s; stopping them")
        self.stop_all(poller, list(arns))

        # podman: as many `podman run -d` at once.
        m = a.podman_concurrency
        argv = ["podman", *a.podman_global.split(), "run", "-d", "--network", "none", *a.podman_run_args.split(),
                a.podman_image, "sleep", "3600"]
        t0 = time.perf_counter()
        procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(m)]
        ids, perrs = [], []
        for p in procs:
            out, err = p.communicate()
            if p.returncode == 0 and out.strip():
                ids.append(out.strip())
                self.note("podman", out.strip())
            else:
                perrs.append(err.strip()[-300:])
        p_all = time.perf_counter() - t0
        running = self.podman("ps", "-q", "--no-trunc", "--filter", "status=running").stdout.split()
        up = len(set(ids) & set(running))
        log(f"concurrency: {len(ids)}/{m} podman containers after {p_all:.2f} s ({up} running); removing them")
        for i in range(0, len(ids), 50):
            self.podman("rm", "-f", "-t", "0", *ids[i:i + 50])
        if perrs:
            log(f"concurrency: {len(perrs)} podman runs failed, first: {perrs[0]}")
        return {"n": n, "calls_s": t_calls, "all_running_s": t_all, "record_s": started - created,
                "podman_n": m, "podman_ok": len(ids), "podman_running": up, "podman_s": p_all}

    # -----------------------------------------------------------------------------------------------------
    # 3. memory

    def memory(self) -> dict:
        a = self.a
        n = a.mem_tasks
        ecs = self.client()
        out: dict = {"n": n}

        # Skiff
        settle()
        before = self.skiff_memory([])
        arns: list[str] = []
        for i in range(0, n, 10):
            arns += [t["taskArn"] for t in self.run_tasks(ecs, a.family_idle, min(10, n - i))]
        self.wait_all(ecs, arns, "RUNNING", 300, interval=0.2)
        settle()
        after = self.skiff_memory(arns)
        out["skiff"] = {k: (after[k] - before[k]) / n / 2**20 for k in before}
        out["skiff_after"] = after
        log(f"memory: {n} Skiff tasks measured; stopping them")
        self.stop_all(ecs, arns, timeout=300)

        # bare crun
        bundles = [self.bundle_for(f"mem-{i}", ["sleep", "3600"]) for i in range(n)]
        settle()
        before = self.crun_memory()
        names = []
        for i, b in enumerate(bundles):
            name = f"mem-{os.getpid()}-{i}"
            self.note("crun", name)
            # The container inherits crun's stdio: a pipe would never reach EOF while it runs.
            err = Path(a.bundles_dir) / "crun-run.err"
            with open(err, "w") as errf:
                p = subprocess.run(["crun", "--root", a.crun_root, "run", "-d", "--bundle", str(b), name],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
            if p.returncode != 0:
                raise RuntimeError(f"crun run -d exited {p.returncode}: {err.read_text()}")
            names.append(name)
        settle()
        after = self.crun_memory()
        out["crun"] = {k: (after[k] - before[k]) / n / 2**20 for k in before}
        log(f"memory: {n} crun containers measured; deleting them")
        for name in names:
            subprocess.run(["crun", "--root", a.crun_root, "delete", "-f", name], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return out

    def cleanup(self) -> None:
        f = self.ids / "tasks"
        if not f.exists():
            return
        ecs = self.client()
        arns = sorted(set(f.read_text().split()))
        live = [t["taskArn"] for t in self.describe(ecs, arns) if t["lastStatus"] != "STOPPED"]
        if live:
            log(f"cleanup: stopping {len(live)} tasks")
            self.stop_all(ecs, live, timeout=300)

    def skiff_memory(self, arns: list[str]) -> dict:
        """The tasks' own cgroups (`/skiff` is shared by every server on the host), this server's conmons."""
        conmons = [pid for pid in pids_named("conmon") if self.a.data_dir in cmdline(pid)]
        return {
            "mem_available_drop": -mem_available(),
            "cgroup": sum(cgroup_usage(f"{self.a.skiff_cgroup}/{arn.rsplit('/', 1)[1]}") for arn in arns),
            "conmon_pss": sum(pss(p) for p in conmons),
            "server_pss": pss(self.a.server_pid),
        }

    def crun_memory(self) -> dict:
        return {"mem_available_drop": -mem_available(), "cgroup": cgroup_usage(self.a.crun_cgroup),
                "conmon_pss": 0, "server_pss": 0}


# ---------------------------------------------------------------------------------------------------------
# host readings


def settle() -> None:
    subprocess.run(["sync"])
    time.sleep(3)


def mem_available() -> int:
    """MemAvailable in bytes: the median of 5 readings over 1 s (other work on the host moves it)."""
    vals = []
    for _ in range(5):
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                vals.append(int(line.split()[1]) * 1024)
        time.sleep(0.2)
    return int(statistics.median(vals))


def cgroup_usage(path: str) -> int:
    """Memory charged to a cgroup (v1 memory.usage_in_bytes, v2 memory.current); 0 if it does not exist."""
    for f in (f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes", f"/sys/fs/cgroup{path}/memory.current"):
        try:
            return int(open(f).read())
        except (FileNotFoundError, ValueError):
            continue
    return 0


def pss(pid: int) -> int:
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def pids_named(comm: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if open(f"/proc/{d}/comm").read().strip() == comm:
                    out.append(int(d))
            except OSError:
                pass
    return out


def cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def log(msg: str) -> None:
    print(f"run-task: {msg}", file=sys.stderr, flush=True)


def pct(v: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(v)
    return s[min(len(s), max(1, math.ceil(q / 100 * len(s)))) - 1]


# ---------------------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--cluster", required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--family-latency", required=True, help="task definition: one container that exits on SIGTERM")
    p.add_argument("--family-idle", required=True, help="task definition: one `sleep 3600` container")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--skiff-cgroup", default="/skiff")
    p.add_argument("--bundle", required=True, help="prepared crun bundle (config.json + rootfs)")
    p.add_argument("--bundles-dir", required=True)
    p.add_argument("--crun-root", required=True)
    p.add_argument("--crun-cgroup", required=True)
    p.add_argument("--podman-global", required=True, help="podman's global flags (storage, cgroup manager)")
    p.add_argument("--podman-run-args", default="")
    p.add_argument("--podman-image", required=True)
    p.add_argument("--ids-dir", required=True)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--podman-concurrency", type=int, default=100)
    p.add_argument("--mem-tasks", type=int, default=200)
    p.add_argument("--parts", default="latency,concurrency,memory")
    p.add_argument("--results", help="where to write the raw results (JSON)")
    p.add_argument("--cleanup", action="store_true",
                   help="only stop every task recorded in IDS_DIR that is not STOPPED and wait until it is")
    a = p.parse_args()
    b = Bench(a)
    if a.cleanup:
        b.cleanup()
        return 0
    parts = a.parts.split(",")
    results: dict = {}
    if "latency" in parts:
        results["latency"] = b.latency()
    if "concurrency" in parts:
        results["concurrency"] = b.concurrency()
    if "memory" in parts:
        results["memory"] = b.memory()
    if a.results:
        Path(a.results).write_text(json.dumps(results, indent=1))
    report(a, results)
    return 0


def report(a: argparse.Namespace, r: dict) -> None:
    cpus = os.cpu_count()
    if "latency" in r:
        lat = r["latency"]
        med = {k: statistics.median(v) for k, v in lat.items()}
        p99 = {k: pct(v, 99) for k, v in lat.items()}
        print(f"\n## RunTask -> RUNNING (cached image, own network namespace), {a.rounds} interleaved rounds\n")
        print("| what | p50 ms | p99 ms | min ms |")
        print("|---|---:|---:|---:|")
        rows = [("skiff_client", "Skiff: RunTask sent -> DescribeTasks shows RUNNING (polled ~2 ms)"),
                ("skiff_record", "Skiff: startedAt - createdAt of the task record"),
                ("crun", "`crun run` prepared bundle, `true` start to exit"),
                ("podman", "`podman run --rm --network none busybox true`"),
                ("fork", "host fork+exec of `true` (the measuring process's overhead)")]
        for k, label in rows:
            print(f"| {label} | {med[k]:.1f} | {p99[k]:.1f} | {min(lat[k]):.1f} |")
        print()
        print("| ratio (p50) | client-observed | record |")
        print("|---|---:|---:|")
        print(f"| Skiff / crun | {med['skiff_client'] / med['crun']:.2f}x | {med['skiff_record'] / med['crun']:.2f}x |")
        print(f"| Skiff / podman | {med['skiff_client'] / med['podman']:.2f}x | "
              f"{med['skiff_record'] / med['podman']:.2f}x |")
        print("\naim: p50 <= 1.5x bare `crun run` with a pool of ready network namespaces")
    if "concurrency" in r:
        c = r["concurrency"]
        print(f"\n## Tasks started per second, {c['n']} concurrent RunTask calls (count=1 each, "
              f"{c['n']} threads)\n")
        print("| what | seconds | tasks/s |")
        print("|---|---:|---:|")
        print(f"| Skiff: first RunTask sent -> all {c['n']} RUNNING (observed) | {c['all_running_s']:.2f} | "
              f"{c['n'] / c['all_running_s']:.1f} |")
        print(f"| Skiff: min createdAt -> max startedAt (records) | {c['record_s']:.2f} | "
              f"{c['n'] / c['record_s']:.1f} |")
        print(f"| Skiff: the {c['n']} RunTask calls answered | {c['calls_s']:.2f} | |")
        print(f"| podman: {c['podman_n']} parallel `podman run -d` -> all returned ({c['podman_ok']} ok, "
              f"{c['podman_running']} running) | {c['podman_s']:.2f} | {c['podman_ok'] / c['podman_s']:.1f} |")
        print(f"| **Skiff / podman (tasks/s)** | | **{(c['n'] / c['all_running_s']) / (c['podman_ok'] / c['podman_s']):.1f}x** |")
        print("\naim: >= 50 tasks/s on 2 cores")
    if "memory" in r:
        m = r["memory"]
        s, k = m["skiff"], m["crun"]
        print(f"\n## Memory per idle task at {m['n']} tasks (`sleep 3600`), MiB per task\n")
        print("| what | Skiff task | bare `crun run -d` |")
        print("|---|---:|---:|")
        print(f"| host MemAvailable drop | {s['mem_available_drop']:.2f} | {k['mem_available_drop']:.2f} |")
        print(f"| charged to the containers' cgroups | {s['cgroup']:.2f} | {k['cgroup']:.2f} |")
        print(f"| conmon (PSS) | {s['conmon_pss']:.2f} | — |")
        print(f"| server growth (PSS) | {s['server_pss']:.2f} | — |")
        acc_s = s["cgroup"] + s["conmon_pss"] + s["server_pss"]
        print(f"| accounted (cgroups + conmon + server) | {acc_s:.2f} | {k['cgroup']:.2f} |")
        print(f"\nSkiff beyond bare crun: {s['mem_available_drop'] - k['mem_available_drop']:.2f} MiB/task by "
              f"MemAvailable, {acc_s - k['cgroup']:.2f} MiB/task accounted (aim: <= 1 MiB beyond the workload)")
    print(f"\n{cpus} CPUs; `crun run` and `podman run` are timed from Python (subprocess), which adds the fork+exec "
          f"row above")


if __name__ == "__main__":
    sys.exit(main())
