# Skiff's build, test and demo entry points. GNU make; run as root on Debian 12 (or any machine with rustup's
# cargo and a python3 that can make virtualenvs).
#
#   make deps     install what is missing (apt packages, the .venv with the AWS CLI, boto3 and pytest)
#   make build    debug build of the workspace (what the tests use)
#   make lint     rustfmt check and clippy with warnings denied
#   make unit     cargo test --workspace
#   make e2e      the end-to-end suite (tests/e2e, pytest) against a real `skiff server`
#   make conformance  every routed operation checked against botocore's service models (tests/conformance)
#   make test     deps + lint + unit + e2e + conformance (what .ci/run runs)
#   make demo     release build, start a server on 127.0.0.1:9400 and walk through it with the AWS CLI
#   make demo-stop
#   make bench    every benchmark: bench/api-throughput.sh, bench/registry-throughput.sh, bench/image-pull.sh,
#                 bench/run-task.sh
#   make bench-registry  registry push/pull against Debian's docker-registry
#   make bench-images    image pull + unpack against skopeo + umoci; warm cache -> rootfs
#   make bench-tasks     RunTask -> RUNNING, tasks/s at 100 concurrent RunTask, memory per idle task: against crun, podman
#   make bench-services  UpdateService -> completed rollout of 10 tasks (vs podman by hand), killed task -> replaced (vs podman --restart)
#   make bench-lb        load balancer proxy req/s and p99 with wrk (vs nginx and haproxy as reverse proxies)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# rustup installs cargo here; a login shell puts it on PATH, a bare CI environment may not.
export PATH := $(HOME)/.cargo/bin:$(PATH)

CARGO        ?= cargo
PYTHON       ?= python3
VENV         := .venv
VENV_PY      := $(VENV)/bin/python
REQUIREMENTS := tests/e2e/requirements.txt
VENV_STAMP   := $(VENV)/.requirements.stamp
# Debian packages the build and the tests need: a C toolchain and pkg-config for the bundled SQLite
# (rusqlite), curl for health checks, CA certificates for cargo and pip; for the registry tests skopeo (push,
# pull, inspect), podman (pulls) and busybox-static (the test images' only binary, tests/images); for the agent's
# container runtime crun (the OCI runtime), conmon (the per-container monitor) and tini (tini-static is the init
# bind-mounted as PID 1 for initProcessEnabled).
APT_PACKAGES := build-essential pkg-config curl ca-certificates skopeo podman busybox-static crun conmon tini
# The agent's task networking: nft loads its NAT/forward table (one `nft -f -` batch per subnet).
APT_PACKAGES += nftables
# The image store's tests compare its root filesystems with `umoci unpack` of the same image (and the image
# benchmark uses umoci as its peer).
APT_PACKAGES += umoci
# The agent's task storage (crates/skiff-agent/src/storage): mkfs.btrfs formats the node's storage image once
# (per-task subvolumes and quotas are ioctls); the tests also create nested subvolumes with `btrfs`.
APT_PACKAGES += btrfs-progs
# runc: the OCI runtime `skiff server --oci-runtime runc` selects instead of crun (tested).
APT_PACKAGES += runc
# Only the benchmarks need these: Debian's docker-registry is the peer of bench/registry-throughput.sh; jq
# reads bench/api-throughput.sh's results.
BENCH_APT_PACKAGES := docker-registry jq
# bench/lb-proxy.sh: wrk drives the load; nginx (backend and peer proxy) and haproxy are the peers.
BENCH_APT_PACKAGES += wrk nginx haproxy

DEBUG_BIN    := target/debug/skiff
RELEASE_BIN  := target/release/skiff

DEMO_DIR     := .demo
DEMO_LISTEN  := 127.0.0.1:9400
DEMO_URL     := http://$(DEMO_LISTEN)
DEMO_PIDFILE := $(DEMO_DIR)/server.pid
DEMO_LOG     := $(DEMO_DIR)/server.log
DEMO_ACCOUNT := 000000000000
DEMO_REGION  := us-east-1

.PHONY: help deps apt-deps cargo-check venv build build-release lint unit e2e conformance test demo demo-stop bench \
        bench-deps bench-api bench-registry bench-images bench-tasks bench-services bench-lb

help:
	@sed -n '3,15p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------------------------------------------------
# dependencies

deps: apt-deps cargo-check venv

# Installs only what is missing; `apt-get update` runs only when something is.
apt-deps:
	@missing=""
	for p in $(APT_PACKAGES) $(EXTRA_APT_PACKAGES); do
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"
	done
	if ! command -v $(PYTHON) >/dev/null 2>&1; then
	  missing="$$missing python3 python3-venv"
	elif [ ! -x $(VENV_PY) ]; then
	  # Debian's python3 needs python3-venv (ensurepip) to make a virtualenv: try it before deciding.
	  probe="$$(mktemp -d)"
	  if ! $(PYTHON) -m venv "$$probe/venv" >/dev/null 2>&1; then missing="$$missing python3-venv"; fi
	  rm -rf "$$probe"
	fi
	if [ -z "$$missing" ]; then echo "deps: system packages present"; exit 0; fi
	if ! command -v apt-get >/dev/null 2>&1; then
	  echo "deps: missing packages:$$missing, and there is no apt-get here: install them yourself" >&2; exit 1
	fi
	sudo=""; if [ "$$(id -u)" != 0 ]; then sudo="sudo"; fi
	echo "deps: installing$$missing"
	$$sudo apt-get update
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends $$missing

cargo-check:
	@if ! command -v $(CARGO) >/dev/null 2>&1; then
	  echo "deps: cargo was not found. Install the Rust toolchain with rustup (https://rustup.rs):" >&2
	  echo "        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --component rustfmt,clippy" >&2
	  echo "      then open a new shell (or run: . \"\$$HOME/.cargo/env\") and run make again." >&2
	  exit 1
	fi
	for tool in fmt clippy; do
	  if ! $(CARGO) $$tool --version >/dev/null 2>&1; then
	    if command -v rustup >/dev/null 2>&1; then
	      comp=$$tool; [ "$$tool" = fmt ] && comp=rustfmt
	      rustup component add "$$comp"
	    else
	      echo "deps: cargo $$tool is missing and rustup is not available to add it" >&2; exit 1
	    fi
	  fi
	done
	echo "deps: $$($(CARGO) --version)"

venv: $(VENV_STAMP)

# The virtualenv is (re)filled only when requirements.txt changes.
$(VENV_STAMP): $(REQUIREMENTS)
	@if [ ! -x $(VENV_PY) ]; then
	  echo "deps: creating $(VENV)"
	  rm -rf $(VENV)
	  $(PYTHON) -m venv $(VENV)
	fi
	echo "deps: installing $(REQUIREMENTS) into $(VENV)"
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	touch $@

# ---------------------------------------------------------------------------------------------------------
# build and tests

build: cargo-check
	$(CARGO) build --workspace

build-release: cargo-check
	$(CARGO) build --release -p skiff

lint: cargo-check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: cargo-check
	$(CARGO) test --workspace

# SKIFF_BIN may point at another binary (e.g. a release build).
SKIFF_BIN ?= $(CURDIR)/$(DEBUG_BIN)
PYTEST_ARGS ?=
e2e: venv build
	SKIFF_BIN="$(SKIFF_BIN)" PYTHONDONTWRITEBYTECODE=1 \
	  $(VENV_PY) -m pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

conformance: venv build
	SKIFF_BIN="$(SKIFF_BIN)" PYTHONDONTWRITEBYTECODE=1 \
	  $(VENV_PY) -m pytest -p no:cacheprovider tests/conformance $(PYTEST_ARGS)

test: deps lint unit e2e conformance

# ---------------------------------------------------------------------------------------------------------
# demo: a server on 127.0.0.1:9400 and the AWS CLI walking through it

demo: deps build-release
	@mkdir -p $(DEMO_DIR)/data
	bold=""; plain=""; if [ -t 1 ]; then bold=$$'\033[1m'; plain=$$'\033[0m'; fi
	run() { printf '\n%s$$ %s%s\n' "$$bold" "$$*" "$$plain"; "$$@"; }
	pid=""
	if [ -f $(DEMO_PIDFILE) ]; then
	  pid="$$(cat $(DEMO_PIDFILE))"
	  if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null && tr '\0' ' ' < /proc/$$pid/cmdline | grep -q 'skiff server'; then
	    echo "demo: reusing the server already running (pid $$pid)"
	  else
	    pid=""; rm -f $(DEMO_PIDFILE)
	  fi
	fi
	if [ -z "$$pid" ]; then
	  echo "demo: starting $(RELEASE_BIN) server --listen $(DEMO_LISTEN) --data-dir $(DEMO_DIR)/data"
	  env -u SKIFF_ROOT_ACCESS_KEY_ID -u SKIFF_ROOT_SECRET_ACCESS_KEY \
	    nohup $(RELEASE_BIN) server --listen $(DEMO_LISTEN) --data-dir $(DEMO_DIR)/data \
	      --account-id $(DEMO_ACCOUNT) --region $(DEMO_REGION) >$(DEMO_LOG) 2>&1 </dev/null &
	  pid=$$!
	  echo "$$pid" > $(DEMO_PIDFILE)
	fi
	for i in $$(seq 1 300); do
	  if curl -fsS $(DEMO_URL)/healthz >/dev/null 2>&1; then break; fi
	  if ! kill -0 "$$pid" 2>/dev/null; then
	    echo "demo: the server exited; its log ($(DEMO_LOG)):" >&2; cat $(DEMO_LOG) >&2; rm -f $(DEMO_PIDFILE); exit 1
	  fi
	  if [ "$$i" = 300 ]; then echo "demo: no answer from $(DEMO_URL)/healthz after 30 s; log in $(DEMO_LOG)" >&2; exit 1; fi
	  sleep 0.1
	done
	echo "demo: server up at $(DEMO_URL) (pid $$pid, log $(DEMO_LOG))"
	creds=$(DEMO_DIR)/data/credentials.json
	if [ ! -f "$$creds" ]; then echo "demo: $$creds is missing" >&2; exit 1; fi
	export AWS_ACCESS_KEY_ID="$$($(VENV_PY) -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessKeyId"])' "$$creds")"
	export AWS_SECRET_ACCESS_KEY="$$($(VENV_PY) -c 'import json,sys; print(json.load(open(sys.argv[1]))["secretAccessKey"])' "$$creds")"
	export AWS_DEFAULT_REGION=$(DEMO_REGION)
	unset AWS_PROFILE AWS_SESSION_TOKEN
	export AWS_CONFIG_FILE=$(CURDIR)/$(DEMO_DIR)/aws-config AWS_SHARED_CREDENTIALS_FILE=$(CURDIR)/$(DEMO_DIR)/aws-credentials
	printf '[default]\nregion = $(DEMO_REGION)\noutput = json\n' > "$$AWS_CONFIG_FILE"
	: > "$$AWS_SHARED_CREDENTIALS_FILE"
	aws="$(VENV)/bin/aws"
	# make strips the indentation of recipe lines, so the file is written flat and pretty-printed after.
	cat > $(DEMO_DIR)/web-taskdef.json.tmp <<-'JSON'
	{"family": "web", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512",
	 "executionRoleArn": "arn:aws:iam::$(DEMO_ACCOUNT):role/ecsTaskExecutionRole",
	 "containerDefinitions": [{"name": "web", "image": "$(DEMO_ACCOUNT).dkr.ecr.$(DEMO_REGION).amazonaws.com/web:latest",
	   "command": ["sh", "-c", "mkdir -p /www && echo \"hello from Skiff task $$HOSTNAME\" > /www/index.html && echo serving && exec httpd -f -p 8080 -h /www"],
	   "portMappings": [{"containerPort": 8080}],
	   "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://localhost:8080/ >/dev/null"], "interval": 5, "timeout": 2, "retries": 2},
	   "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web",
	     "awslogs-region": "$(DEMO_REGION)", "awslogs-stream-prefix": "web"}}}]}
	JSON
	$(VENV_PY) -m json.tool --indent 2 $(DEMO_DIR)/web-taskdef.json.tmp > $(DEMO_DIR)/web-taskdef.json
	rm -f $(DEMO_DIR)/web-taskdef.json.tmp
	run $$aws --endpoint-url $(DEMO_URL) sts get-caller-identity
	# The sample image: a reproducible busybox OCI layout (no internet needed), pushed to Skiff's registry.
	[ -f $(DEMO_DIR)/busybox/index.json ] || $(VENV_PY) tests/images/oci_image.py busybox $(DEMO_DIR)/busybox >/dev/null
	$$aws --endpoint-url $(DEMO_URL) ecr describe-repositories --repository-names web >/dev/null 2>&1 || \
	  run $$aws --endpoint-url $(DEMO_URL) ecr create-repository --repository-name web --query repository.repositoryUri
	run skopeo copy --quiet --dest-tls-verify=false --dest-creds "AWS:$$($$aws --endpoint-url $(DEMO_URL) ecr get-login-password)" \
	  oci:$(DEMO_DIR)/busybox:latest docker://$(DEMO_LISTEN)/web:latest
	run $$aws --endpoint-url $(DEMO_URL) ecs create-cluster --cluster-name demo
	echo; echo "$(DEMO_DIR)/web-taskdef.json:"; cat $(DEMO_DIR)/web-taskdef.json
	run $$aws --endpoint-url $(DEMO_URL) ecs register-task-definition --cli-input-json file://$(DEMO_DIR)/web-taskdef.json \
	  --query 'taskDefinition.{arn: taskDefinitionArn, revision: revision, status: status, cpu: cpu, memory: memory}'
	run $$aws --endpoint-url $(DEMO_URL) ecs list-clusters
	e="--endpoint-url $(DEMO_URL)"
	subnets="$$($$aws $$e ec2 describe-subnets --filters Name=default-for-az,Values=true --query 'Subnets[].SubnetId' --output text)"
	vpc="$$($$aws $$e ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId' --output text)"
	# A load balancer, a target group and a listener (kept when the demo runs again on the same server).
	lb="$$($$aws $$e elbv2 describe-load-balancers --names web --query 'LoadBalancers[0].LoadBalancerArn' --output text 2>/dev/null || true)"
	if [ -z "$$lb" ] || [ "$$lb" = None ]; then
	  run $$aws $$e elbv2 create-load-balancer --name web --type application --subnets $$subnets \
	    --query 'LoadBalancers[0].{arn: LoadBalancerArn, dns: DNSName, state: State.Code}'
	  lb="$$($$aws $$e elbv2 describe-load-balancers --names web --query 'LoadBalancers[0].LoadBalancerArn' --output text)"
	fi
	dns="$$($$aws $$e elbv2 describe-load-balancers --names web --query 'LoadBalancers[0].DNSName' --output text)"
	tg="$$($$aws $$e elbv2 describe-target-groups --names web --query 'TargetGroups[0].TargetGroupArn' --output text 2>/dev/null || true)"
	if [ -z "$$tg" ] || [ "$$tg" = None ]; then
	  run $$aws $$e elbv2 create-target-group --name web --protocol HTTP --port 8080 --vpc-id "$$vpc" --target-type ip \
	    --health-check-path / --health-check-interval-seconds 5 --health-check-timeout-seconds 2 --healthy-threshold-count 2 \
	    --query 'TargetGroups[0].TargetGroupArn'
	  tg="$$($$aws $$e elbv2 describe-target-groups --names web --query 'TargetGroups[0].TargetGroupArn' --output text)"
	  $$aws $$e elbv2 modify-target-group-attributes --target-group-arn "$$tg" \
	    --attributes Key=deregistration_delay.timeout_seconds,Value=5 >/dev/null
	fi
	if [ "$$($$aws $$e elbv2 describe-listeners --load-balancer-arn "$$lb" --query 'length(Listeners)')" = 0 ]; then
	  run $$aws $$e elbv2 create-listener --load-balancer-arn "$$lb" --protocol HTTP --port 80 \
	    --default-actions Type=forward,TargetGroupArn="$$tg" --query 'Listeners[0].{port: Port, protocol: Protocol}'
	fi
	# The service: 2 tasks of the sample app behind the load balancer (a new deployment when it exists).
	if [ "$$($$aws $$e ecs describe-services --cluster demo --services web --query 'services[0].status' --output text)" = ACTIVE ]; then
	  run $$aws $$e ecs update-service --cluster demo --service web --task-definition web --desired-count 2 \
	    --query 'service.{name: serviceName, desired: desiredCount, taskDefinition: taskDefinition}'
	else
	  run $$aws $$e ecs create-service --cluster demo --service-name web --task-definition web --desired-count 2 \
	    --launch-type FARGATE --network-configuration "awsvpcConfiguration={subnets=[$$(echo $$subnets | tr ' ' ',')]}" \
	    --load-balancers targetGroupArn="$$tg",containerName=web,containerPort=8080 --health-check-grace-period-seconds 30 \
	    --query 'service.{name: serviceName, desired: desiredCount, status: status}'
	fi
	printf '\n%s$$ (waiting for the service to reach a steady state behind the load balancer)%s\n' "$$bold" "$$plain"
	for i in $$(seq 1 120); do
	  s="$$($$aws $$e ecs describe-services --cluster demo --services web \
	    --query 'services[0].[length(deployments), deployments[0].rolloutState, runningCount, desiredCount]' --output text)"
	  set -- $$s
	  printf '  deployments %s  rollout %s  running %s/%s\n' "$$1" "$$2" "$$3" "$$4"
	  if [ "$$1" = 1 ] && [ "$$2" = COMPLETED ] && [ "$$3" = "$$4" ]; then break; fi
	  if [ "$$i" = 120 ]; then echo "demo: the service did not become steady in 60 s; see its events:" >&2
	    $$aws $$e ecs describe-services --cluster demo --services web --query 'services[0].events[:5]' >&2; exit 1; fi
	  sleep 0.5
	done
	run $$aws $$e ecs wait services-stable --cluster demo --services web
	run $$aws $$e elbv2 describe-target-health --target-group-arn "$$tg" \
	  --query 'TargetHealthDescriptions[].{target: Target.Id, port: Target.Port, state: TargetHealth.State}'
	printf '\n%s$$ for i in 1 2 3 4; do curl -s http://%s/; done%s\n' "$$bold" "$$dns" "$$plain"
	for i in 1 2 3 4; do curl -fsS "http://$$dns/"; done
	task="$$($$aws $$e ecs list-tasks --cluster demo --service-name web --query 'taskArns[0]' --output text)"
	run $(RELEASE_BIN) logs --endpoint $(DEMO_URL) --data-dir $(DEMO_DIR)/data --cluster demo "$$task"
	printf '%s\n' "" \
	  "The sample web app runs as service web (2 tasks) behind the load balancer: http://$$dns/" \
	  "" \
	  "Skiff is running at $(DEMO_URL) (pid $$pid, log $(DEMO_LOG), data in $(DEMO_DIR)/data)." \
	  "Point the AWS CLI (or boto3, or Terraform) at it with --endpoint-url $(DEMO_URL) and these credentials:" \
	  "" \
	  "    export AWS_ACCESS_KEY_ID=$$AWS_ACCESS_KEY_ID" \
	  "    export AWS_SECRET_ACCESS_KEY=$$AWS_SECRET_ACCESS_KEY" \
	  "    export AWS_DEFAULT_REGION=$(DEMO_REGION)" \
	  "    $(VENV)/bin/aws --endpoint-url $(DEMO_URL) ecs describe-services --cluster demo --services web" \
	  "    $(RELEASE_BIN) services --endpoint $(DEMO_URL) --cluster demo" \
	  "    $(RELEASE_BIN) deploy web --endpoint $(DEMO_URL) --cluster demo --image $(DEMO_ACCOUNT).dkr.ecr.$(DEMO_REGION).amazonaws.com/web:latest" \
	  "    $(RELEASE_BIN) logs -f --endpoint $(DEMO_URL) --data-dir $(DEMO_DIR)/data --cluster demo $$task" \
	  "" \
	  "(the credentials are kept in $(DEMO_DIR)/data/credentials.json)" \
	  "Stop the server and its tasks with: make demo-stop"

demo-stop:
	@if [ ! -f $(DEMO_PIDFILE) ]; then echo "demo: no server recorded in $(DEMO_PIDFILE)"; exit 0; fi
	pid="$$(cat $(DEMO_PIDFILE))"
	if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null && tr '\0' ' ' < /proc/$$pid/cmdline | grep -q 'skiff server'; then
	  kill "$$pid"
	  for i in $$(seq 1 100); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done
	  if kill -0 "$$pid" 2>/dev/null; then echo "demo: pid $$pid ignored SIGTERM for 10 s; sending SIGKILL"; kill -9 "$$pid"; fi
	  echo "demo: stopped the server (pid $$pid)"
	else
	  echo "demo: pid $$pid from $(DEMO_PIDFILE) is not a running skiff server"
	fi
	rm -f $(DEMO_PIDFILE)
	# Tasks outlive the server: remove them (containers, mounts, cgroups, network) too.
	if [ -x $(RELEASE_BIN) ] && [ -d $(DEMO_DIR)/data/agent ]; then $(RELEASE_BIN) node reset --data-dir $(DEMO_DIR)/data; fi

# ---------------------------------------------------------------------------------------------------------

# The scripts build what they run (release) and start their own servers.
bench: bench-api bench-registry bench-images bench-tasks bench-services bench-lb

bench-deps: deps
	@$(MAKE) apt-deps EXTRA_APT_PACKAGES="$(BENCH_APT_PACKAGES)"

bench-api: bench-deps
	@if [ ! -f bench/api-throughput.sh ]; then echo "bench: bench/api-throughput.sh does not exist yet" >&2; exit 1; fi
	bash bench/api-throughput.sh

bench-registry: bench-deps
	bash bench/registry-throughput.sh

bench-images: bench-deps
	bash bench/image-pull.sh

bench-tasks: bench-deps
	bash bench/run-task.sh

bench-services: bench-deps
	bash bench/service-deploy.sh

bench-lb: bench-deps
	bash bench/lb-proxy.sh
