#!/usr/bin/env python3
"""The measuring half of bench/service-deploy.sh (which builds, starts the server, pushes the image,
registers the two task definition revisions and prepares the podman image and the crun bundle, then cleans
up after this script whatever happens). Two parts, each against its peer in the same run, round by round
interleaved (the order alternates):

  deploy   a service of TASKS tasks (minimumHealthyPercent 100, maximumPercent 200); each round UpdateService
           to the other revision -> DescribeServices (every ~20 ms) shows one deployment, the new one,
           rolloutState COMPLETED with TASKS running; the time its TASKS new tasks were first all running is
           noted on the way. Peer: a rolling restart by hand of TASKS podman containers running the same
           command, TASKS x (`podman run -d` new, `podman rm -f` old), sequential.
  replace  a steady service of TASKS tasks; each round SIGKILL to the init process of the oldest task's
           container (pid from `crun state`; only tasks that have run REPLACE_MIN_AGE seconds) -> ListTasks
           + DescribeTasks (every POLL s) show TASKS RUNNING tasks again, one of them new. The task records
           break it down: the killed task's stoppingAt (the agent saw the exit) and stoppedAt (torn down),
           the new task's createdAt (the service controller reacted) and startedAt. Peers: a `podman run -d
           --restart=always` container, SIGKILL to its process -> `podman inspect` shows it running with a
           new pid (and its State.StartedAt); one plain `crun run -d` of the same bundle, for scale.

Every service, task, podman and crun container is recorded in IDS_DIR as soon as it exists, so the shell
script can remove it even if this script dies (`--cleanup` scales the services to 0, deletes them and stops
every task left); each part removes what it made at its end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_task_bench import Ecs, pct  # noqa: E402 - the signed keep-alive client and nearest-rank percentile

DEPLOY_POLL = 0.02


def log(msg: str) -> None:
    print(f"service-deploy: {msg}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.ids = Path(a.ids_dir)
        self.ids.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.ecs = Ecs(a.endpoint, a.region, os.environ["SKIFF_ROOT_ACCESS_KEY_ID"],
                       os.environ["SKIFF_ROOT_SECRET_ACCESS_KEY"])
        self.seen: set[str] = set()

    def note(self, kind: str, ident: str) -> None:
        with self.lock, open(self.ids / kind, "a") as f:
            f.write(ident + "\n")

    # -- Skiff: services and tasks

    def create_service(self, name: str, td: str) -> None:
        self.note("services", name)
        self.ecs.call("CreateService", {
            "cluster": self.a.cluster, "serviceName": name, "taskDefinition": td, "desiredCount": self.a.tasks,
            "launchType": "FARGATE",
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": [self.a.subnet]}}})

    def service(self, name: str) -> dict:
        r = self.ecs.call("DescribeServices", {"cluster": self.a.cluster, "services": [name]})
        if r.get("failures") or not r.get("services"):
            raise RuntimeError(f"DescribeServices {name}: {r.get('failures')}")
        return r["services"][0]

    def steady(self, svc: dict, td: str) -> bool:
        """One deployment, of `td`, COMPLETED, with every task running."""
        deps = svc.get("deployments") or []
        if len(deps) != 1:
            return False
        d = deps[0]
        return (d.get("taskDefinition") == td and d.get("rolloutState") == "COMPLETED"
                and d.get("runningCount") == self.a.tasks and d.get("pendingCount", 0) == 0
                and svc.get("runningCount") == self.a.tasks)

    def wait_steady(self, name: str, td: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            svc = self.service(name)
            if self.steady(svc, td):
                return svc
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {name} not steady on {td} within {timeout} s: {brief(svc)}")
            time.sleep(0.1)

    def service_tasks(self, name: str, also: tuple[str, ...] = ()) -> list[dict]:
        """The service's tasks whose desiredStatus is RUNNING (ListTasks by serviceName) and the tasks `also`
        names, described."""
        arns, token = [], None
        while True:
            body = {"cluster": self.a.cluster, "serviceName": name, "desiredStatus": "RUNNING"}
            if token:
                body["nextToken"] = token
            r = self.ecs.call("ListTasks", body)
            arns += r.get("taskArns", [])
            token = r.get("nextToken")
            if not token:
                break
        for arn in arns:
            if arn not in self.seen:
                self.seen.add(arn)
                self.note("tasks", arn)
        return self.describe(arns + [a for a in also if a not in arns])

    def describe(self, arns: list[str]) -> list[dict]:
        out = []
        for i in range(0, len(arns), 100):
            out += self.ecs.call("DescribeTasks", {"cluster": self.a.cluster, "tasks": arns[i:i + 100]})["tasks"]
        return out

    def wait_stopped(self, arns: list[str], timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.describe(arns)
            if all(t["lastStatus"] == "STOPPED" for t in tasks):
                return tasks
            if time.monotonic() > deadline:
                raise RuntimeError(f"tasks not STOPPED within {timeout} s: "
                                   f"{[(t['taskArn'], t['lastStatus']) for t in tasks]}")
            time.sleep(0.1)

    def remove_service(self, name: str) -> None:
        """Scale to 0 and delete (force), if it is still ACTIVE; its tasks then stop."""
        try:
            r = self.ecs.call("DescribeServices", {"cluster": self.a.cluster, "services": [name]})
            if not any(s.get("status") == "ACTIVE" for s in r.get("services", [])):
                return
        except RuntimeError as e:
            log(f"DescribeServices {name}: {e}")
        try:
            self.ecs.call("UpdateService", {"cluster": self.a.cluster, "service": name, "desiredCount": 0})
        except RuntimeError as e:
            log(f"UpdateService {name} desiredCount=0: {e}")
        try:
            self.ecs.call("DeleteService", {"cluster": self.a.cluster, "service": name, "force": True})
        except RuntimeError as e:
            log(f"DeleteService {name}: {e}")

    # -- peers

    def podman(self, *args: str) -> subprocess.CompletedProcess:
        return checked(["podman", *self.a.podman_global.split(), *args])

    def podman_run(self, *run_args: str, version: str) -> str:
        cid = self.podman("run", "-d", *self.a.podman_run_args.split(), *run_args, "-e", f"VERSION={version}",
                          self.a.podman_image, "sh", "-c", self.a.idle).stdout.strip()
        self.note("podman", cid)
        return cid

    # -----------------------------------------------------------------------------------------------------
    # 1. deploy

    def deploy(self) -> dict:
        a, n = self.a, self.a.tasks
        name = "bench-deploy"
        tds = a.td
        log(f"deploy: creating a {n}-task service and {n} podman containers")
        self.create_service(name, tds[0])
        self.wait_steady(name, tds[0], 300)
        pods = [self.podman_run(version="v1") for _ in range(n)]
        res: dict[str, list[float]] = {k: [] for k in ("skiff_completed", "skiff_new_running", "skiff_record",
                                                       "new_started", "old_stopping", "old_stopped", "podman")}
        current = 0
        for i in range(-a.warmup, a.rounds):
            record = i >= 0
            target = 1 - current
            order = ["skiff", "podman"] if i % 2 == 0 else ["podman", "skiff"]
            for which in order:
                if which == "skiff":
                    completed, new_running, rec, steps = self.deploy_skiff(name, tds[current], tds[target])
                    if record:
                        res["skiff_completed"].append(completed)
                        res["skiff_new_running"].append(new_running)
                        for k, v in steps.items():
                            res[k].append(v)
                        if rec is not None:
                            res["skiff_record"].append(rec)
                else:
                    t0 = time.perf_counter()
                    fresh = []
                    for old in pods:
                        fresh.append(self.podman_run(version=f"v{target + 1}"))
                        self.podman("rm", "-f", old)
                    took = time.perf_counter() - t0
                    pods = fresh
                    if record:
                        res["podman"].append(took)
            current = target
            if record:
                log(f"deploy: round {i + 1}/{a.rounds}: Skiff {res['skiff_completed'][-1]:.2f} s, "
                    f"podman {res['podman'][-1]:.2f} s")
            else:
                log(f"deploy: warm-up round {i + a.warmup + 1}/{a.warmup} done")
        log("deploy: removing the service and the podman containers")
        self.remove_service(name)
        self.podman("rm", "-f", "-t", "0", *pods)
        self.wait_stopped(sorted(self.seen), 300)
        return res

    def deploy_skiff(self, name: str, old_td: str, new_td: str) -> tuple[float, float, float | None, dict]:
        """UpdateService old -> new; seconds until COMPLETED (old deployment gone), until the new deployment
        first had every task running, the completed deployment's updatedAt - createdAt, and the steps the
        task records show."""
        before = {t["taskArn"] for t in self.service_tasks(name)}
        wall0 = time.time()
        t0 = time.perf_counter()
        self.ecs.call("UpdateService", {"cluster": self.a.cluster, "service": name, "taskDefinition": new_td})
        new_running = None
        while True:
            svc = self.service(name)
            now = time.perf_counter()
            primary = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), None)
            if (new_running is None and primary and primary.get("taskDefinition") == new_td
                    and primary.get("runningCount") == self.a.tasks):
                new_running = now - t0
            if self.steady(svc, new_td):
                completed = now - t0
                break
            if now - t0 > 300:
                raise RuntimeError(f"deployment to {new_td} not COMPLETED within 300 s: {brief(svc)}")
            time.sleep(DEPLOY_POLL)
        d = svc["deployments"][0]
        rec = (d["updatedAt"] - d["createdAt"]) if "updatedAt" in d and "createdAt" in d else None
        # What the service runs now: TASKS tasks of the new revision, none of the old ones.
        tasks = self.service_tasks(name)
        bad = [t for t in tasks if t["taskDefinitionArn"] != new_td or t["taskArn"] in before]
        if len(tasks) != self.a.tasks or bad:
            raise RuntimeError(f"after the deployment to {new_td}: {len(tasks)} tasks, {len(bad)} not of it")
        # The old deployment is gone once none of its tasks runs; they may still be deprovisioning.
        old = self.wait_stopped(sorted(before), 120)
        # From the records, seconds after UpdateService was sent: the last new task started, the first old
        # task began stopping, the last old task was STOPPED.
        steps = {"new_started": max(t["startedAt"] for t in tasks) - wall0,
                 "old_stopping": min(t["stoppingAt"] for t in old) - wall0,
                 "old_stopped": max(t["stoppedAt"] for t in old) - wall0}
        return completed, new_running if new_running is not None else completed, rec, steps

    # -----------------------------------------------------------------------------------------------------
    # 2. replace

    def replace(self) -> dict:
        a, n = self.a, self.a.tasks
        name = "bench-replace"
        log(f"replace: creating a {n}-task service and a podman --restart=always container")
        self.create_service(name, a.td[0])
        self.wait_steady(name, a.td[0], 300)
        pod = self.podman_run("--restart=always", version="v1")
        keys = ["skiff_client", "skiff_record", "noticed", "old_stopped", "new_created", "new_start", "gap",
                "seen_gone", "seen_new", "podman_client", "podman_record", "crun", "age"]
        res: dict[str, list[float]] = {k: [] for k in keys}
        for i in range(-a.warmup, a.replace_rounds):
            record = i >= 0
            order = ["skiff", "podman", "crun"]
            order = order[i % 3:] + order[:i % 3]
            for which in order:
                if which == "skiff":
                    r = self.replace_skiff(name)
                elif which == "podman":
                    r = self.replace_podman(pod)
                else:
                    r = self.crun_start(i + a.warmup)
                if record:
                    for k, v in r.items():
                        res[k].append(v)
            if record:
                log(f"replace: round {i + 1}/{a.replace_rounds}: Skiff {res['skiff_client'][-1]:.0f} ms, "
                    f"podman {res['podman_client'][-1]:.0f} ms")
        log("replace: removing the service and the podman container")
        self.remove_service(name)
        self.podman("rm", "-f", "-t", "0", pod)
        self.wait_stopped(sorted(self.seen), 300)
        return res

    def replace_skiff(self, name: str) -> dict:
        a = self.a
        tasks = self.service_tasks(name)
        running = [t for t in tasks if t["lastStatus"] == "RUNNING"]
        if len(running) != a.tasks:
            raise RuntimeError(f"replace: {len(running)} of {a.tasks} tasks RUNNING before the kill")
        victim = min(running, key=lambda t: t["startedAt"])
        age = time.time() - victim["startedAt"]
        if age < a.replace_min_age:
            time.sleep(a.replace_min_age - age)
            age = a.replace_min_age
        arn = victim["taskArn"]
        tid = arn.rsplit("/", 1)[1]
        state = json.loads(checked(["crun", "--root", a.crun_root_skiff, "state", f"{tid}-0"]).stdout)
        pid = int(state["pid"])
        before = {t["taskArn"] for t in running}
        wall0 = time.time()
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        seen_gone = seen_new = None
        while True:
            tasks = self.service_tasks(name, also=(arn,))
            now = time.perf_counter()
            if seen_gone is None and any(t["taskArn"] == arn and t["lastStatus"] == "STOPPED" for t in tasks):
                seen_gone = now
            if seen_new is None and any(t["taskArn"] not in before for t in tasks):
                seen_new = now
            up = [t for t in tasks if t["lastStatus"] == "RUNNING"]
            fresh = [t for t in up if t["taskArn"] not in before]
            if len(up) == a.tasks and fresh and all(t["taskArn"] != arn for t in up):
                t1 = time.perf_counter()
                break
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"replace: the service has not replaced {arn} within 60 s: "
                                   f"{[(t['taskArn'][-8:], t['lastStatus']) for t in tasks]}")
            time.sleep(a.poll)
        [new] = fresh
        [old] = self.wait_stopped([arn], 60)
        if old.get("stopCode") != "EssentialContainerExited":
            log(f"replace: the killed task stopped with {old.get('stopCode')}: {old.get('stoppedReason')}")

        def ms(x: float | None) -> float:
            return float("nan") if x is None else (x - wall0) * 1000

        return {"skiff_client": (t1 - t0) * 1000, "skiff_record": ms(new.get("startedAt")),
                "noticed": ms(old.get("stoppingAt")), "old_stopped": ms(old.get("stoppedAt")),
                "new_created": ms(new.get("createdAt")),
                "gap": ms(new.get("createdAt")) - ms(old.get("stoppedAt")),
                "new_start": (new["startedAt"] - new["createdAt"]) * 1000, "age": age,
                "seen_gone": ((seen_gone or t1) - t0) * 1000, "seen_new": ((seen_new or t1) - t0) * 1000}

    def replace_podman(self, cid: str) -> dict:
        fmt = "{{.State.Pid}} {{.State.Status}} {{.State.StartedAt.UnixNano}}"
        pid, status, _ = self.podman("inspect", "-f", fmt, cid).stdout.split()
        if status != "running" or pid == "0":
            raise RuntimeError(f"replace: the podman container is {status} before the kill")
        wall0 = time.time()
        t0 = time.perf_counter()
        os.kill(int(pid), signal.SIGKILL)
        while True:
            npid, status, started = self.podman("inspect", "-f", fmt, cid).stdout.split()
            if status == "running" and npid not in ("0", pid):
                t1 = time.perf_counter()
                break
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"replace: podman did not restart its container within 30 s ({status})")
        return {"podman_client": (t1 - t0) * 1000, "podman_record": (int(started) / 1e9 - wall0) * 1000}

    def crun_start(self, i: int) -> dict:
        name = f"svc-{os.getpid()}-{i}"
        self.note("crun", name)
        t0 = time.perf_counter()
        # The container inherits crun's stdio: a pipe would never reach EOF while it runs.
        p = subprocess.run(["crun", "--root", self.a.crun_root, "run", "-d", "--bundle", self.a.bundle, name],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took = (time.perf_counter() - t0) * 1000
        if p.returncode != 0:
            raise RuntimeError(f"crun run -d {name} exited {p.returncode}")
        subprocess.run(["crun", "--root", self.a.crun_root, "delete", "-f", name], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {"crun": took}

    # -----------------------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        f = self.ids / "services"
        if f.exists():
            for name in sorted(set(f.read_text().split())):
                self.remove_service(name)
        arns: set[str] = set()
        if (self.ids / "tasks").exists():
            arns |= set((self.ids / "tasks").read_text().split())
        try:  # tasks a service started that this script never listed
            r = self.ecs.call("ListTasks", {"cluster": self.a.cluster, "desiredStatus": "RUNNING"})
            arns |= set(r.get("taskArns", []))
        except RuntimeError as e:
            log(f"cleanup: ListTasks: {e}")
        if not arns:
            return
        live = [t["taskArn"] for t in self.describe(sorted(arns)) if t["lastStatus"] != "STOPPED"]
        if live:
            log(f"cleanup: stopping {len(live)} tasks")
            for arn in live:
                self.ecs.call("StopTask", {"cluster": self.a.cluster, "task": arn, "reason": "benchmark over"})
            self.wait_stopped(live, 300)


def checked(argv: list[str]) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}… exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return p


def brief(svc: dict) -> str:
    deps = [(d.get("status"), d.get("taskDefinition", "").rsplit("/", 1)[-1], d.get("rolloutState"),
             d.get("runningCount"), d.get("pendingCount")) for d in svc.get("deployments", [])]
    return f"running {svc.get('runningCount')}, deployments {deps}"


# ---------------------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--cluster", required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--td", action="append", required=True, help="task definition ARN (twice: v1, v2)")
    p.add_argument("--crun-root-skiff", required=True, help="the server's crun --root (DATA/agent/runtime/crun)")
    p.add_argument("--bundle", required=True, help="prepared crun bundle running `sleep 3600`")
    p.add_argument("--crun-root", required=True)
    p.add_argument("--podman-global", required=True, help="podman's global flags (storage, cgroup manager)")
    p.add_argument("--podman-run-args", default="")
    p.add_argument("--podman-image", required=True)
    p.add_argument("--idle", required=True, help="the shell command of the tasks and the podman containers")
    p.add_argument("--ids-dir", required=True)
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--replace-rounds", type=int, default=10)
    p.add_argument("--replace-min-age", type=float, default=11)
    p.add_argument("--poll", type=float, default=0.01)
    p.add_argument("--parts", default="deploy,replace")
    p.add_argument("--results", help="where to write the raw results (JSON)")
    p.add_argument("--cleanup", action="store_true",
                   help="only scale every recorded service to 0, delete it and stop every task left")
    a = p.parse_args()
    b = Bench(a)
    if a.cleanup:
        b.cleanup()
        return 0
    if len(a.td) != 2:
        p.error("--td must be given twice (v1, v2)")
    parts = a.parts.split(",")
    results: dict = {}
    if "deploy" in parts:
        results["deploy"] = b.deploy()
    if "replace" in parts:
        results["replace"] = b.replace()
    if a.results:
        Path(a.results).write_text(json.dumps(results, indent=1))
    report(a, results)
    return 0


def row(label: str, v: list[float], fmt: str = "{:.2f}") -> str:
    if not v:
        return f"| {label} | — | — | — |"
    return f"| {label} | {fmt.format(statistics.median(v))} | {fmt.format(pct(v, 90))} | {fmt.format(min(v))} |"


def rounds(v: list[float], fmt: str) -> str:
    return " ".join(fmt.format(x) for x in v)


def ratio(x: list[float], y: list[float], q: float) -> str:
    if not x or not y:
        return "—"
    return f"{(statistics.median(x) if q == 50 else pct(x, q)) / (statistics.median(y) if q == 50 else pct(y, q)):.2f}x"


def report(a: argparse.Namespace, r: dict) -> None:
    n = a.tasks
    if "deploy" in r:
        d = r["deploy"]
        print(f"\n## Rolling deployment of a {n}-task service (min 100% / max 200%), {a.rounds} interleaved rounds "
              f"(v1 <-> v2)\n")
        print("| what | p50 s | p90 s | min s |")
        print("|---|---:|---:|---:|")
        print(row("Skiff: UpdateService -> rolloutState COMPLETED, old deployment gone (observed, ~20 ms poll)",
                  d["skiff_completed"]))
        print(row(f"Skiff: UpdateService -> the new deployment's {n} tasks all running (observed)",
                  d["skiff_new_running"]))
        print(row("Skiff: the completed deployment's updatedAt - createdAt (record)", d["skiff_record"]))
        print(row(f"  UpdateService -> the last of the {n} new tasks' startedAt (records)", d["new_started"]))
        print(row("  UpdateService -> the first old task's stoppingAt (records)", d["old_stopping"]))
        print(row("  UpdateService -> the last old task's stoppedAt (records; may be after COMPLETED)",
                  d["old_stopped"]))
        print(row(f"podman: {n} x (`podman run -d` new + `podman rm -f` old), sequential by hand", d["podman"]))
        print(f"\nrounds, s: Skiff {rounds(d['skiff_completed'], '{:.2f}')}; podman {rounds(d['podman'], '{:.2f}')}\n")
        print("| ratio | p50 | p90 |")
        print("|---|---:|---:|")
        print(f"| Skiff (COMPLETED) / podman by hand | {ratio(d['skiff_completed'], d['podman'], 50)} | "
              f"{ratio(d['skiff_completed'], d['podman'], 90)} |")
        print("\npeer: what a rolling restart by hand costs with podman (one container replaced at a time, "
              "never fewer than 10 running, no network: --network none); Skiff starts the new tasks side by side "
              "(maximumPercent 200), each with its own network namespace, veth and address, and stops old ones "
              "as new ones run (minimumHealthyPercent 100)")
    if "replace" in r:
        p = r["replace"]
        print(f"\n## Replacing a killed task (SIGKILL to the container's init) in a steady {n}-task service, "
              f"{a.replace_rounds} interleaved rounds\n")
        print("| what | p50 ms | p90 ms | min ms |")
        print("|---|---:|---:|---:|")
        print(row(f"Skiff: SIGKILL -> {n} RUNNING again, one new (observed, ~{a.poll * 1000:.0f} ms poll)",
                  p["skiff_client"], "{:.0f}"))
        print(row("Skiff: SIGKILL -> the new task's startedAt (record)", p["skiff_record"], "{:.0f}"))
        print(row("  SIGKILL -> the killed task's stoppingAt (the agent saw the exit)", p["noticed"], "{:.0f}"))
        print(row("  SIGKILL -> the killed task's stoppedAt (torn down)", p["old_stopped"], "{:.0f}"))
        print(row("  SIGKILL -> the new task's createdAt (the service controller reacted)", p["new_created"],
                  "{:.0f}"))
        print(row("  the killed task's stoppedAt -> the new task's createdAt (< 0: created before)", p["gap"],
                  "{:.0f}"))
        print(row("  the new task's createdAt -> startedAt", p["new_start"], "{:.0f}"))
        print(row("  SIGKILL -> the client sees the killed task STOPPED (observed)", p["seen_gone"], "{:.0f}"))
        print(row("  SIGKILL -> the client sees the new task listed (observed)", p["seen_new"], "{:.0f}"))
        print(row("podman --restart=always: SIGKILL -> `podman inspect` running, new pid (observed)",
                  p["podman_client"], "{:.0f}"))
        print(row("podman --restart=always: SIGKILL -> State.StartedAt (record)", p["podman_record"], "{:.0f}"))
        print(row("`crun run -d` of the same busybox bundle (one plain container start)", p["crun"], "{:.0f}"))
        print(f"\nrounds, ms: Skiff {rounds(p['skiff_client'], '{:.0f}')}; "
              f"podman {rounds(p['podman_client'], '{:.0f}')}\n")
        print("| ratio | p50 | p90 |")
        print("|---|---:|---:|")
        print(f"| Skiff / podman --restart=always (observed) | {ratio(p['skiff_client'], p['podman_client'], 50)} | "
              f"{ratio(p['skiff_client'], p['podman_client'], 90)} |")
        print(f"| Skiff / podman --restart=always (records) | {ratio(p['skiff_record'], p['podman_record'], 50)} | "
              f"{ratio(p['skiff_record'], p['podman_record'], 90)} |")
        print(f"\nkilled tasks had run {min(p['age']):.0f}-{max(p['age']):.0f} s; podman restarts the same "
              f"container (no new container, no scheduler, no network: --network none), Skiff starts a new task "
              f"(network attachment, storage, cgroup, container) and tears the killed one down")
        print("aim: p50 SIGKILL -> replacement RUNNING under 1 s")
    print(f"\n{os.cpu_count()} CPUs; podman and crun are timed from Python (subprocess)")


if __name__ == "__main__":
    sys.exit(main())
