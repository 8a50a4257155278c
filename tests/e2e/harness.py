"""The end-to-end harness: start and kill real `skiff server` processes, talk to them the way users do
(boto3, the AWS CLI) and the way hostile clients do (hand-signed raw HTTP requests).

Expected behaviour in the tests comes from real AWS (the botocore models, AWS's documentation and
shared/AWS-PROTOCOLS.md), never from what the server happens to answer.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import http.client
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
SKIFF_BIN = Path(os.environ.get("SKIFF_BIN") or REPO / "target" / "debug" / "skiff")

# Every server the suite starts is told these, so the tests can check that they are used.
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIASKIFFE2ETESTKEY1"
SECRET_ACCESS_KEY = "skiffE2E/secret+Key0123456789abcdefGHIJKL"

ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
ECS_CONTENT_TYPE = "application/x-amz-json-1.1"
STS_VERSION = "2011-06-15"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

LISTENING_RE = re.compile(r"skiff server listening on http://(\S+)")


# ---------------------------------------------------------------------------------------------------------
# waiting


def eventually(timeout: float, fn: Callable[[], Any], msg: str, interval: float = 0.05) -> Any:
    """Calls `fn` until it returns something truthy without raising, and returns that. Fails with `msg`
    (and the last result or exception) after `timeout` seconds. The only way these tests wait."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = fn()
            if result:
                return result
            last = f"last result: {result!r}"
        except AssertionError as e:
            last = f"last assertion: {e}"
        except Exception as e:  # noqa: BLE001 - any failure counts as "not yet"
            last = f"last error: {type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise AssertionError(f"{msg} (after {timeout} s; {last})")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------
# the server process


_VPC_BLOCKS = itertools.count(os.getpid() % 97)


def _next_blocks() -> tuple[str, str]:
    """A /16 of 10.100.0.0–10.249.255.255 per server, so that servers alive at the same time (in this run or
    another) give their tasks non-overlapping subnets on the host, and the matching /16 of 127.100.0.0–
    127.249.255.255 for its load balancers' addresses (so their listeners never collide either)."""
    n = 100 + next(_VPC_BLOCKS) % 150
    return f"10.{n}.0.0/16", f"127.{n}.0.0/16"


class SkiffServer:
    """One `skiff server` process on a data directory. Started with `start()`, killed by its own Popen
    handle (never by name). `kill9_and_restart()` SIGKILLs it and starts a new process on the same data
    directory (on a new free port)."""

    ALL: list["SkiffServer"] = []  # every server the session started, for logs of failed tests

    def __init__(
        self,
        data_dir: Path,
        *,
        credentials: Optional[tuple[str, str]] = (ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        account_id: Optional[str] = ACCOUNT_ID,
        region: Optional[str] = REGION,
        name: str = "server",
        extra_args: Optional[list[str]] = None,
    ):
        self.data_dir = Path(data_dir)
        self.env_credentials = credentials
        self.account_id = account_id or "000000000000"
        self.region = region or "us-east-1"
        self._account_arg = account_id
        self._region_arg = region
        self.name = name
        self.proc: Optional[subprocess.Popen] = None
        self.address: Optional[str] = None
        self.log_lines: list[str] = []
        self._log_lock = threading.Lock()
        self._listening = threading.Event()
        self._reader: Optional[threading.Thread] = None
        self.starts = 0
        self.vpc_cidr, self.lb_cidr = _next_blocks()
        self.extra_args = list(extra_args or [])
        SkiffServer.ALL.append(self)

    # -- credentials the clients use
    @property
    def access_key_id(self) -> str:
        return self.credentials()[0]

    @property
    def secret_access_key(self) -> str:
        return self.credentials()[1]

    def credentials(self) -> tuple[str, str]:
        if self.env_credentials:
            return self.env_credentials
        data = json.loads((self.data_dir / "credentials.json").read_text())
        return data["accessKeyId"], data["secretAccessKey"]

    @property
    def endpoint(self) -> str:
        assert self.address, "server not started"
        return f"http://{self.address}"

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def log_text(self, since: int = 0) -> str:
        with self._log_lock:
            return "".join(self.log_lines[since:])

    def log_len(self) -> int:
        with self._log_lock:
            return len(self.log_lines)

    def stdout_of_last_start(self) -> str:
        with self._log_lock:
            text = "".join(self.log_lines)
        marker = f"--- {self.name}: start #{self.starts}"
        return text[text.rfind(marker):] if marker in text else text

    def command(self, listen: str = "127.0.0.1:0") -> list[str]:
        cmd = [str(SKIFF_BIN), "server", "--listen", listen, "--data-dir", str(self.data_dir),
               "--vpc-cidr", self.vpc_cidr, "--lb-cidr", self.lb_cidr]
        if self._account_arg:
            cmd += ["--account-id", self._account_arg]
        if self._region_arg:
            cmd += ["--region", self._region_arg]
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> "SkiffServer":
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        if not SKIFF_BIN.exists():
            raise RuntimeError(f"{SKIFF_BIN} does not exist: build it first (make build) or set SKIFF_BIN")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIFF_", "AWS_"))}
        env.setdefault("RUST_BACKTRACE", "1")
        if self.env_credentials:
            env["SKIFF_ROOT_ACCESS_KEY_ID"], env["SKIFF_ROOT_SECRET_ACCESS_KEY"] = self.env_credentials
        self.starts += 1
        self.address = None
        self._listening.clear()
        cmd = self.command()
        with self._log_lock:
            self.log_lines.append(f"--- {self.name}: start #{self.starts}: {' '.join(cmd)}\n")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            errors="replace",
            bufsize=1,
        )
        proc = self.proc
        self._reader = threading.Thread(target=self._read_output, args=(proc,), daemon=True)
        self._reader.start()

        try:
            eventually(timeout, lambda: self._listening.is_set() or proc.poll() is not None,
                       f"{self.name}: no 'skiff server listening on http://ADDR' line")
            if not self._listening.is_set():
                raise AssertionError(f"{self.name}: skiff server exited with {proc.returncode} before listening")
            eventually(timeout, self._healthy, f"{self.name}: GET {self.endpoint}/healthz never answered 200")
        except BaseException as e:
            self.kill()
            raise AssertionError(f"{e}\n--- server output ---\n{self.log_text()}") from None
        return self

    def _read_output(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._log_lock:
                self.log_lines.append(line)
            m = LISTENING_RE.search(line)
            if m and not self._listening.is_set():
                self.address = m.group(1).rstrip("/")
                self._listening.set()
        with self._log_lock:
            self.log_lines.append(f"--- {self.name}: output closed (exit {proc.poll()})\n")

    def _healthy(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL exactly this process (by its Popen handle) and reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=5)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill9_and_restart(self) -> "SkiffServer":
        self.kill()
        return self.start()

    # -- clients bound to this server
    def client(self, service: str = "ecs", **kw: Any):
        return boto_client(self, service, **kw)

    def aws(self, *args: str, **kw: Any):
        return run_aws(self, *args, **kw)


def new_server(name: str = "server", **kw: Any) -> SkiffServer:
    """A server on a fresh temporary data directory (not started)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"skiff-e2e-{name}-"))
    return SkiffServer(data_dir, name=name, **kw)


def destroy(server: SkiffServer) -> None:
    """Kill the server, remove what its agent holds on the host (tasks outlive the server: containers,
    mounts, cgroups, network namespaces, veths, bridges and nft rules of this data directory, by the ids in
    it) and remove its data directory."""
    try:
        server.kill()
        if (server.data_dir / "agent").exists():
            args = server.extra_args[server.extra_args.index("--oci-runtime"):][:2] \
                if "--oci-runtime" in server.extra_args else []
            proc = subprocess.run([str(SKIFF_BIN), "node", "reset", "--data-dir", str(server.data_dir), *args],
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, f"skiff node reset failed: {proc.stderr}"
    finally:
        shutil.rmtree(server.data_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# boto3


_SESSION: Optional[boto3.session.Session] = None


def _session() -> boto3.session.Session:
    # One session for the whole run: it caches the service models, which makes clients cheap to create.
    # Clients are created from the main thread only (sessions are not thread-safe; clients are).
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def boto_client(
    server: SkiffServer,
    service: str = "ecs",
    *,
    access_key_id: Optional[str] = None,
    secret_access_key: Optional[str] = None,
    region: str = REGION,
    max_attempts: int = 1,
    max_pool_connections: int = 10,
):
    """A boto3 client pointed at `server`. No retries by default, so the first answer is the one tested."""
    ak, sk = server.credentials()
    return _session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=access_key_id or ak,
        aws_secret_access_key=secret_access_key or sk,
        config=Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=max_pool_connections,
        ),
    )


# ---------------------------------------------------------------------------------------------------------
# the AWS CLI (PyPI v1, from the virtualenv that runs the tests)


def aws_bin() -> str:
    candidate = Path(sys.executable).parent / "aws"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("aws")
    if not found:
        raise RuntimeError("the AWS CLI is not installed: run `make deps`")
    return found


class AwsCliError(Exception):
    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        m = re.search(r"An error occurred \(([^)]+)\)", stderr)
        self.code = m.group(1) if m else None
        super().__init__(f"aws {' '.join(args)} exited {returncode}: {stderr.strip()}")


def aws_env(server: SkiffServer, access_key_id: Optional[str] = None, secret: Optional[str] = None) -> dict:
    ak, sk = server.credentials()
    home = Path(tempfile.gettempdir()) / "skiff-e2e-aws-home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": access_key_id or ak,
        "AWS_SECRET_ACCESS_KEY": secret or sk,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }


def run_aws(server: SkiffServer, *args: str, access_key_id=None, secret=None, timeout: float = 60) -> Any:
    """Runs the AWS CLI against `server` with `--output json`; returns the parsed output (None when it
    prints nothing) or raises AwsCliError with the CLI's stderr and the AWS error code."""
    argv = [aws_bin(), "--endpoint-url", server.endpoint, "--output", "json", "--region", REGION, *args]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=aws_env(server, access_key_id, secret)
    )
    if proc.returncode != 0:
        raise AwsCliError(list(args), proc.returncode, proc.stdout, proc.stderr)
    out = proc.stdout.strip()
    return json.loads(out) if out else None


# ---------------------------------------------------------------------------------------------------------
# SigV4 by hand (hashlib/hmac), so tests can forge dates, bodies, secrets and signed headers


def login_password(server: SkiffServer) -> str:
    """`aws ecr get-login-password` against the server: the registry token skopeo logs in with."""
    argv = [aws_bin(), "--endpoint-url", server.endpoint, "--region", server.region, "ecr", "get-login-password"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=aws_env(server))
    assert proc.returncode == 0, f"aws ecr get-login-password exited {proc.returncode}: {proc.stderr}"
    return proc.stdout.strip()


def skopeo_push(server: SkiffServer, source_ref: str, repo: str, tag: str, timeout: float = 180) -> None:
    """`skopeo copy SOURCE docker://SERVER/REPO:TAG` with the server's registry token, in a private HOME."""
    skopeo = shutil.which("skopeo")
    assert skopeo, "skopeo is not installed (make deps installs it)"
    home = Path(tempfile.mkdtemp(prefix="skiff-e2e-skopeo-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REGISTRY_AUTH_FILE", "DOCKER_"))}
        env["HOME"] = str(home)
        argv = [skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
                "--dest-creds", f"AWS:{login_password(server)}", source_ref, f"docker://{server.address}/{repo}:{tag}"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        assert proc.returncode == 0, f"skopeo copy failed: {proc.stderr}"
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _uri_encode(s: str) -> str:
    return urllib.parse.quote(s, safe="-_.~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    enc = sorted((_uri_encode(k), _uri_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in enc)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    def h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    return h(h(h(h(("AWS4" + secret).encode(), date), region), service), "aws4_request")


def sigv4_signature(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: dict[str, str],
    signed_headers: list[str],
    payload_hash: str,
    amz_date: str,
    secret: str,
    region: str,
    service: str,
) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    canon_headers = "".join(f"{h}:{' '.join(str(lower[h]).split())}\n" for h in signed_headers)
    creq = "\n".join(
        [method, path, canonical_query(query), canon_headers, ";".join(signed_headers), payload_hash]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(secret, amz_date[:8], region, service)
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def amz_date(when: Optional[dt.datetime] = None) -> str:
    when = when or dt.datetime.now(dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


class RawResponse:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def request_id(self) -> Optional[str]:
        return self.headers.get("x-amzn-RequestId")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> Optional[str]:
        """The AWS error code: JSON `__type` (text before '#' and after ':' stripped, as botocore does) or
        the query protocol's <Code>."""
        text = self.body.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                t = json.loads(text).get("__type")
            except ValueError:
                return None
            if not t:
                return None
            return t.split("#")[-1].split(":")[0]
        if text.startswith("<"):
            try:
                root = ET.fromstring(text)
            except ET.ParseError:
                return None
            for el in root.iter():
                if el.tag.split("}")[-1] == "Code":
                    return el.text
        return None

    @property
    def error_message(self) -> str:
        text = self.body.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                d = json.loads(text)
            except ValueError:
                return ""
            return d.get("message") or d.get("Message") or ""
        if text.startswith("<"):
            try:
                root = ET.fromstring(text)
            except ET.ParseError:
                return ""
            for el in root.iter():
                if el.tag.split("}")[-1] == "Message":
                    return el.text or ""
        return ""

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.body[:500]!r}>"


def send_raw(
    server: SkiffServer,
    method: str,
    path_and_query: str,
    headers: dict[str, str],
    body: bytes = b"",
    timeout: float = 30,
    check_request_id: bool = True,
) -> RawResponse:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.putrequest(method, path_and_query, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if "content-length" not in {k.lower() for k in headers} and (body or method == "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        out = RawResponse(resp.status, resp.headers, resp.read())
    finally:
        conn.close()
    if check_request_id:
        assert out.request_id, f"response without x-amzn-RequestId header: {out!r}"
    return out


def signed_request(
    server: SkiffServer,
    *,
    service: str,
    method: str = "POST",
    path: str = "/",
    query: Optional[list[tuple[str, str]]] = None,
    headers: Optional[dict[str, str]] = None,
    body: bytes = b"",
    access_key_id: Optional[str] = None,
    secret: Optional[str] = None,
    region: str = REGION,
    when: Optional[dt.datetime] = None,
    signed_headers: Optional[list[str]] = None,
    sign_body: Optional[bytes] = None,
    sign: bool = True,
    check_request_id: bool = True,
) -> RawResponse:
    """Sends a request signed with SigV4 computed here (header form). `sign_body` signs other bytes than the
    ones sent (tampering); `when` forges the date; `signed_headers` picks what is signed (default: every
    header sent, host and x-amz-date included)."""
    ak, sk = server.credentials()
    ak = access_key_id or ak
    sk = secret or sk
    query = query or []
    date = amz_date(when)
    hdrs = {"Host": server.address, "X-Amz-Date": date}
    hdrs.update(headers or {})
    if sign:
        names = signed_headers or sorted(k.lower() for k in hdrs)
        payload_hash = hashlib.sha256(body if sign_body is None else sign_body).hexdigest()
        sig = sigv4_signature(
            method=method,
            path=path,
            query=query,
            headers=hdrs,
            signed_headers=names,
            payload_hash=payload_hash,
            amz_date=date,
            secret=sk,
            region=region,
            service=service,
        )
        hdrs["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={ak}/{date[:8]}/{region}/{service}/aws4_request, "
            f"SignedHeaders={';'.join(names)}, Signature={sig}"
        )
    qs = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in query)
    return send_raw(server, method, path + ("?" + qs if qs else ""), hdrs, body, check_request_id=check_request_id)


def ecs_request(server: SkiffServer, operation: str, payload: Any = None, **kw: Any) -> RawResponse:
    """A signed ECS (AWS JSON 1.1) call. `payload` is a dict (serialised) or raw bytes."""
    if payload is None:
        payload = {}
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": ECS_CONTENT_TYPE,
        "X-Amz-Target": f"{ECS_TARGET_PREFIX}.{operation}",
    }
    headers.update(kw.pop("headers", {}) or {})
    return signed_request(server, service="ecs", body=body, headers=headers, **kw)


def sts_request(server: SkiffServer, params: Optional[dict[str, str]] = None, **kw: Any) -> RawResponse:
    """A signed STS (query protocol) POST."""
    params = params if params is not None else {"Action": "GetCallerIdentity", "Version": STS_VERSION}
    body = urllib.parse.urlencode(params).encode()
    headers = {"Content-Type": FORM_CONTENT_TYPE}
    headers.update(kw.pop("headers", {}) or {})
    return signed_request(server, service="sts", body=body, headers=headers, **kw)


def presign_by_hand(
    server: SkiffServer,
    params: dict[str, str],
    *,
    service: str = "sts",
    method: str = "GET",
    when: Optional[dt.datetime] = None,
    expires: int = 300,
    secret: Optional[str] = None,
) -> str:
    """A presigned (query-string) URL path, signed here, so tests can forge its date."""
    ak, sk = server.credentials()
    date = amz_date(when)
    auth = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{ak}/{date[:8]}/{REGION}/{service}/aws4_request",
        "X-Amz-Date": date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    query = list(params.items()) + list(auth.items())
    sig = sigv4_signature(
        method=method,
        path="/",
        query=query,
        headers={"host": server.address},
        signed_headers=["host"],
        payload_hash=hashlib.sha256(b"").hexdigest(),
        amz_date=date,
        secret=secret or sk,
        region=REGION,
        service=service,
    )
    query.append(("X-Amz-Signature", sig))
    return "/?" + "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in query)


# ---------------------------------------------------------------------------------------------------------
# test data


def uniq(prefix: str) -> str:
    """A name no other test uses (the session's server is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def cluster_arn(name: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:ecs:{REGION}:{account}:cluster/{name}"


def task_definition_arn(family: str, revision: int, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:ecs:{REGION}:{account}:task-definition/{family}:{revision}"


def fargate_task_definition(family: str, **overrides: Any) -> dict:
    """A small valid Fargate task definition (RegisterTaskDefinition input)."""
    td = {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "busybox",
                "command": ["httpd", "-f", "-p", "8080"],
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    }
    td.update(overrides)
    return td


def container(name: str, **kw: Any) -> dict:
    c = {"name": name, "image": "busybox"}
    c.update(kw)
    return c


# ---------------------------------------------------------------------------------------------------------
# assertions


def client_error(fn: Callable, *args: Any, **kw: Any):
    """Calls a boto3 operation that must fail; returns the botocore ClientError."""
    from botocore.exceptions import ClientError

    try:
        result = fn(*args, **kw)
    except ClientError as e:
        status = e.response["ResponseMetadata"].get("HTTPStatusCode")
        assert status is not None and 400 <= status < 500, f"expected a 4xx, got {status}: {e.response}"
        return e
    text = repr(result)
    raise AssertionError(f"expected an error, the call succeeded: {text[:1500]}{' …' if len(text) > 1500 else ''}")


def tags_dict(tags: Optional[list]) -> dict:
    return {t["key"]: t.get("value", "") for t in (tags or [])}


# -- pushing images over /v2/ ------------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class RegistryClient:
    """Raw /v2/ calls with the Basic credentials ECR GetAuthorizationToken hands out (`authorizationToken` is
    base64 of `AWS:<token>`), and tiny OCI images pushed the way `docker push` does (blobs uploaded
    monolithically: POST, then PUT with `?digest=`)."""

    def __init__(self, server: "SkiffServer", ecr: Any):
        self.server = server
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        self.auth = f"Basic {token}"

    def call(self, method: str, path: str, body: bytes = b"", headers: Optional[dict] = None):
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        try:
            hdrs = {"Host": self.server.address, "Authorization": self.auth, "Content-Length": str(len(body))}
            hdrs.update(headers or {})
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders()
            if body:
                conn.send(body)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def _expect(self, what: str, got: tuple, status: int) -> None:
        assert got[0] == status, f"{what}: expected HTTP {status}, got {got[0]}: {got[2][:500]!r}"

    def push_blob(self, repo: str, data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        got = self.call("POST", f"/v2/{repo}/blobs/uploads/")
        self._expect(f"POST /v2/{repo}/blobs/uploads/", got, 202)
        parts = urllib.parse.urlsplit(got[1]["Location"])
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        sep = "&" if "?" in path else "?"
        got = self.call("PUT", f"{path}{sep}digest={urllib.parse.quote(digest)}", data,
                        {"Content-Type": "application/octet-stream"})
        self._expect(f"PUT {path} (blob {digest})", got, 201)
        return {"digest": digest, "size": len(data)}

    def put_manifest(self, repo: str, reference: str, manifest: bytes) -> None:
        got = self.call("PUT", f"/v2/{repo}/manifests/{reference}", manifest, {"Content-Type": OCI_MANIFEST})
        self._expect(f"PUT /v2/{repo}/manifests/{reference}", got, 201)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        assert got[1].get("Docker-Content-Digest") in (None, digest), got[1]

    def push_image(self, repo: str, reference: Optional[str], label: str) -> dict:
        """Pushes a one-layer OCI image whose config carries `label` (so every label is a new image) under
        `reference` (a tag; None pushes it by digest, untagged). Returns its digest, manifest and the sizes
        of config, layer and manifest."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            data = f"hello from {label}\n".encode()
            info = tarfile.TarInfo("hello.txt")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"skiff.test": label}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]},
        }).encode()
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": dict(self.push_blob(repo, config), mediaType=OCI_CONFIG),
            "layers": [dict(self.push_blob(repo, layer), mediaType=OCI_LAYER)],
        }).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.put_manifest(repo, reference or digest, manifest)
        # Distinct push times (millisecond precision) keep "newest" unambiguous for tests that count.
        time.sleep(0.005)
        return {"digest": digest, "manifest": manifest, "sizes": (len(config), len(layer), len(manifest))}

