#!/usr/bin/env python3
"""Static consistency checks of docker/ and deploy/ against the contract
(../shared/spec/agent-contract.md), the agent's own option table (its
--help output) and each other. Run by test_deploy_files.sh, which does the
checks that need processes (mosquitto, PostgreSQL, the agent,
systemd-analyze, apt-cache) with what this script writes into --out.

Prints one line per finding ("ok ...", "FAIL ...", "note ..."), exits 1
when anything failed. Needs python3 and PyYAML (Debian: python3-yaml).
"""

import argparse
import configparser
import json
import os
import re
import shlex
import sys

try:
    import yaml
except ImportError:
    print("FAIL PyYAML is missing: install python3-yaml "
          "(scripts/install-deps.sh should)")
    sys.exit(1)

# Fallback when the contract file is not beside the repository (§5).
CONTRACT_METRICS_FALLBACK = {
    "spotagent_messages_received_total": "counter",
    "spotagent_messages_rejected_total": "counter",
    "spotagent_sink_writes_total": "counter",
    "spotagent_sink_errors_total": "counter",
    "spotagent_sink_backlog_messages": "gauge",
    "spotagent_mqtt_connected": "gauge",
    "spotagent_end_to_end_latency_seconds": "histogram",
}
# Contract §4: the tables the dashboard may query.
CONTRACT_TABLES = {
    "air_quality", "noise_level", "weather", "crowd_count", "crowd_event",
    "device_info", "device_health", "generic_measure", "rejected_message",
}
# Ports of the contract and the stack: agent endpoint, broker, PostgreSQL,
# Orion, MongoDB.
PORTS = {"spotagent": 8080, "mqtt": 1883, "mqtts": 8883, "postgres": 5432,
         "orion": 1026, "mongo": 27017}

failures = 0


def ok(msg):
    print(f"ok   {msg}")


def note(msg):
    print(f"note {msg}")


def fail(msg):
    global failures
    failures += 1
    print(f"FAIL {msg}")


def check(cond, msg):
    if cond:
        ok(msg)
    else:
        fail(msg)
    return cond


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_yaml_all(path):
    try:
        docs = [d for d in yaml.safe_load_all(read(path)) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{path}: YAML does not parse: {e}")
        return []
    ok(f"{path}: YAML parses ({len(docs)} document(s))")
    return docs


# --- the agent's options ----------------------------------------------------

def agent_variables(help_text):
    """SPOTAGENT_* names the agent reads, from its --help: every option
    that takes a VALUE has a variable; secrets (*) also a _FILE variant.
    Options without VALUE (--help, --version, --check-config) are flags
    only."""
    names, secrets = set(), set()
    for line in help_text.splitlines():
        m = re.match(r"\s+--([a-z0-9-]+)( VALUE)?( \*)?\s", line + " ")
        if not m or not m.group(2):
            continue
        var = "SPOTAGENT_" + m.group(1).upper().replace("-", "_")
        names.add(var)
        if m.group(3):
            secrets.add(var)
            names.add(var + "_FILE")
    return names, secrets


def contract_metrics(path):
    if not path or not os.path.exists(path):
        note(f"contract not found ({path}): using the metric list of §5 "
             "copied into this script")
        return dict(CONTRACT_METRICS_FALLBACK)
    metrics = {}
    for m in re.finditer(r"^\|\s*`(spotagent_[a-z0-9_]+)`\s*\|\s*(\w+)",
                         read(path), re.M):
        metrics[m.group(1)] = m.group(2)
    check(metrics, f"contract {path} lists {len(metrics)} metrics")
    return metrics


def metric_names_in(text):
    return set(re.findall(r"\bspotagent_[a-z0-9_]+", text))


def check_metric_names(where, names, metrics):
    bad = []
    for n in sorted(names):
        base = n
        for suffix in ("_bucket", "_sum", "_count"):
            if n.endswith(suffix) and n[: -len(suffix)] in metrics:
                base = n[: -len(suffix)]
                if metrics[base] != "histogram":
                    bad.append(n + " (suffix on a " + metrics[base] + ")")
                break
        if base not in metrics:
            bad.append(n)
    check(not bad, f"{where}: metric names are the contract's "
          f"({len(names)} used){': unknown ' + ', '.join(bad) if bad else ''}")


# --- SPOTAGENT_* variables everywhere ---------------------------------------

def check_variables(root, files, known):
    used = {}
    for path in files:
        for v in re.findall(r"\bSPOTAGENT_[A-Z0-9_]*[A-Z0-9]", read(path)):
            used.setdefault(v, set()).add(os.path.relpath(path, root))
    unknown = {v: w for v, w in used.items() if v not in known}
    for v, where in sorted(unknown.items()):
        fail(f"{v} (in {', '.join(sorted(where))}) is not a variable of "
             "the agent (see spotagent --help)")
    ok(f"{len(used)} distinct SPOTAGENT_* variables used in "
       f"{len(files)} files; {len(used) - len(unknown)} known to the agent")
    return used


# --- Dockerfile -----------------------------------------------------------

def dockerfile_instructions(text):
    """(instruction, argument) pairs, continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, arg = cur.partition(" ")
        out.append((word.upper(), arg.strip()))
        cur = ""
    return out


def apt_packages(run_arg):
    """Packages of the apt-get install commands of a RUN line."""
    pkgs = []
    for part in re.split(r"&&|;", run_arg):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:]
                     if not w.startswith("-") and "=" not in w]
    return pkgs


def check_dockerfile(root, out):
    path = os.path.join(root, "docker/Dockerfile")
    ins = dockerfile_instructions(read(path))
    stages = [i for i, (w, _) in enumerate(ins) if w == "FROM"]
    check(len(stages) >= 2, "Dockerfile: multi-stage")
    froms = [a for w, a in ins if w == "FROM"]
    args = {a.split("=")[0]: a.split("=", 1)[1] for w, a in ins
            if w == "ARG" and "=" in a}
    base = [re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""),
                   f.split()[0]) for f in froms]
    check(all(b == "debian:bookworm-slim" for b in base),
          f"Dockerfile: every stage on debian:bookworm-slim ({base})")
    runtime = ins[stages[-1]:]
    build = ins[stages[0]:stages[-1]]
    build_pkgs = [p for w, a in build if w == "RUN" for p in apt_packages(a)]
    run_pkgs = [p for w, a in runtime if w == "RUN" for p in apt_packages(a)]
    check(any("make" in a for w, a in build if w == "RUN"),
          "Dockerfile: the build stage runs make")
    # The -dev packages of scripts/install-deps.sh (test-only ones aside).
    deps = read(os.path.join(root, "scripts/install-deps.sh"))
    m = re.search(r"packages=\((.*?)\)", deps, re.S)
    want = [p for p in (m.group(1).split() if m else [])
            if p.endswith("-dev") and p != "libcriterion-dev"]
    want += ["build-essential"]
    missing = [p for p in want if p not in build_pkgs]
    check(m and not missing, "Dockerfile: build stage installs the -dev "
          f"packages of install-deps.sh{': missing ' + str(missing) if missing else ''}")
    check(not any(p.endswith("-dev") for p in run_pkgs),
          "Dockerfile: no -dev package in the runtime stage")
    for p in ("ca-certificates", "curl"):
        check(p in run_pkgs, f"Dockerfile: runtime stage installs {p}")
    with open(os.path.join(out, "runtime-packages.txt"), "w") as f:
        f.write("\n".join(run_pkgs) + "\n")
    with open(os.path.join(out, "build-packages.txt"), "w") as f:
        f.write("\n".join(build_pkgs) + "\n")

    def last(word):
        v = [a for w, a in runtime if w == word]
        return v[-1] if v else ""
    env = " ".join(a for w, a in runtime if w == "ENV")
    check("SPOTAGENT_HTTP_LISTEN=0.0.0.0:8080" in env,
          "Dockerfile: ENV SPOTAGENT_HTTP_LISTEN=0.0.0.0:8080")
    check(re.search(r"SPOTAGENT_DATA_DIR=/var/lib/spotagent\b", env),
          "Dockerfile: SPOTAGENT_DATA_DIR is the volume")
    check("/var/lib/spotagent" in last("VOLUME"),
          "Dockerfile: VOLUME /var/lib/spotagent")
    check(last("EXPOSE").split()[0:1] == ["8080"], "Dockerfile: EXPOSE 8080")
    user = last("USER")
    uid = user.split(":")[0]
    check(uid.isdigit() and int(uid) != 0,
          f"Dockerfile: runs as a fixed non-root uid ({user})")
    hc = last("HEALTHCHECK")
    check("http://127.0.0.1:8080/health" in hc and "curl" in hc,
          "Dockerfile: HEALTHCHECK curls http://127.0.0.1:8080/health "
          "(curl is installed)")
    ep = last("ENTRYPOINT")
    check(ep.startswith("[") and "spotagent" in json.loads(ep)[0],
          f"Dockerfile: ENTRYPOINT spotagent ({ep})")
    copies = " ".join(a for w, a in build if w == "COPY")
    for d in ("Makefile", "include/", "src/", "schemas/"):
        check(d in copies, f"Dockerfile: the build stage copies {d}")
        check(os.path.exists(os.path.join(root, d.rstrip("/"))),
              f"Dockerfile: {d} exists in the repository")


# --- docker-compose.yml -----------------------------------------------------

URL_RE = re.compile(r"\b(mqtts?|wss?|https?|postgres(?:ql)?|mongodb)://"
                    r"(?:[^@/\s]+@)?([A-Za-z0-9_.-]+):(\d+)")


def check_compose(root, out, known_vars, secrets):
    path = os.path.join(root, "docker/docker-compose.yml")
    docs = load_yaml_all(path)
    if not docs:
        return
    c = docs[0]
    here = os.path.dirname(path)
    services = c.get("services", {})
    names = set(services)
    for want in ("spotagent", "mosquitto", "postgres", "orion", "mongo",
                 "fleet"):
        check(want in names, f"compose: service {want}")
    for name, s in services.items():
        for dep, cond in (s.get("depends_on") or {}).items():
            check(dep in names, f"compose: {name} depends_on {dep} exists")
            cond = cond.get("condition") if isinstance(cond, dict) else None
            if cond == "service_healthy":
                hc = services.get(dep, {}).get("healthcheck", {})
                check(hc.get("test") and not hc.get("disable"),
                      f"compose: {dep} has a healthcheck ({name} waits "
                      "for service_healthy)")
        for sec in s.get("secrets", []) or []:
            sec = sec if isinstance(sec, str) else sec.get("source")
            check(sec in (c.get("secrets") or {}),
                  f"compose: secret {sec} of {name} is declared")
        for v in s.get("volumes", []) or []:
            src = v.split(":")[0]
            if src.startswith(".") or src.startswith("/"):
                check(os.path.exists(os.path.join(here, src)),
                      f"compose: {name} mounts {src}, which exists")
            else:
                check(src in (c.get("volumes") or {}),
                      f"compose: named volume {src} of {name} is declared")
        b = s.get("build")
        if b:
            ctx = os.path.normpath(os.path.join(here, b.get("context", ".")))
            check(os.path.exists(os.path.join(ctx, b.get("dockerfile",
                                                          "Dockerfile"))),
                  f"compose: {name} builds {b.get('dockerfile')} from "
                  f"{os.path.relpath(ctx, root) or '.'}")
        # Every URL names a service and its port.
        texts = []
        env = s.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        texts += [str(v) for v in env.values()]
        for key in ("command", "entrypoint"):
            v = s.get(key)
            texts += v if isinstance(v, list) else [str(v or "")]
        for t in texts:
            for scheme, host, port in URL_RE.findall(t):
                if host in ("127.0.0.1", "localhost"):
                    continue
                check(host in names, f"compose: {name} refers to {host}, "
                      "a service")
                want = {"mqtt": PORTS["mqtt"], "mqtts": PORTS["mqtts"],
                        "postgres": PORTS["postgres"],
                        "postgresql": PORTS["postgres"],
                        "mongodb": PORTS["mongo"]}.get(scheme)
                if host == "orion":
                    want = PORTS["orion"]
                if want:
                    check(int(port) == want, f"compose: {name}: {scheme}://"
                          f"{host}:{port} uses port {want}")
    for name, sec in (c.get("secrets") or {}).items():
        f = os.path.join(here, sec.get("file", ""))
        check(os.path.isfile(f), f"compose: secret {name} file exists")
    agent = services.get("spotagent", {})
    env = agent.get("environment") or {}
    for k in env:
        check(k in known_vars, f"compose: spotagent reads {k}")
    check(str(env.get("SPOTAGENT_HTTP_LISTEN", "")).endswith(":8080")
          and not str(env.get("SPOTAGENT_HTTP_LISTEN")).startswith("127."),
          "compose: the agent listens on 0.0.0.0:8080")
    check(env.get("SPOTAGENT_MQTT_CLIENT_ID"),
          "compose: a fixed SPOTAGENT_MQTT_CLIENT_ID (persistent session)")
    ports = [str(p) for p in agent.get("ports", [])]
    check(any(p.endswith(":8080") for p in ports),
          f"compose: agent port 8080 published ({ports})")
    hc = " ".join(agent.get("healthcheck", {}).get("test", []))
    check(re.search(r"http://127\.0\.0\.1:8080/(health|ready)\b", hc),
          "compose: the agent's healthcheck probes /health or /ready on 8080")
    vols = [v.split(":") for v in agent.get("volumes", [])]
    check(any(len(v) > 1 and v[1] == env.get("SPOTAGENT_DATA_DIR")
              for v in vols),
          "compose: the journal (SPOTAGENT_DATA_DIR) is on a volume")
    for svc, port in (("mosquitto", PORTS["mqtt"]),
                      ("postgres", PORTS["postgres"]),
                      ("orion", PORTS["orion"])):
        ps = [str(p) for p in services.get(svc, {}).get("ports", [])]
        check(any(p.endswith(f":{port}") for p in ps),
              f"compose: {svc} publishes {port}")
    mconf = [v.split(":")[0] for v in services.get("mosquitto", {})
             .get("volumes", []) if v.endswith("mosquitto.conf:ro")
             or ":/mosquitto/config/mosquitto.conf" in v]
    check(mconf and "deploy/mosquitto/" in mconf[0],
          "compose: mosquitto's config comes from deploy/mosquitto")
    if mconf:
        with open(os.path.join(out, "compose-mosquitto.txt"), "w") as f:
            f.write(os.path.basename(mconf[0]) + "\n")
    # The agent's environment, for --check-config (secrets as files in
    # docker/secrets/ instead of /run/secrets/).
    with open(os.path.join(out, "compose-agent.env"), "w") as f:
        for k, v in env.items():
            v = str(v)
            if k.endswith("_FILE") and v.startswith("/run/secrets/"):
                name = v[len("/run/secrets/"):]
                v = os.path.join(here, c["secrets"][name]["file"])
            f.write(f"{k}={v}\n")
    fleet = services.get("fleet", {})
    ep = fleet.get("entrypoint") or []
    check(ep and os.path.basename(ep[0]) == "spotsim",
          "compose: the fleet runs spotsim")
    with open(os.path.join(out, "fleet-flags.txt"), "w") as f:
        for w in fleet.get("command") or []:
            if str(w).startswith("--"):
                f.write(str(w).split("=")[0] + "\n")
    pg = read(os.path.join(here, c["secrets"]["pg_url"]["file"])).strip()
    check("host=postgres" in pg and f"port={PORTS['postgres']}" in pg,
          "compose: the pg_url secret points at postgres:5432")
    pw = read(os.path.join(here, c["secrets"]["postgres_password"]["file"]))
    check(f"password={pw.strip()}" in pg,
          "compose: the pg_url secret has PostgreSQL's password")


# --- Kubernetes -----------------------------------------------------------

def check_k8s(root, out, known_vars, secrets):
    d = os.path.join(root, "deploy/k8s")
    kust = load_yaml_all(os.path.join(d, "kustomization.yaml"))
    objs = []
    for res in (kust[0].get("resources", []) if kust else []):
        p = os.path.join(d, res)
        if check(os.path.exists(p), f"k8s: kustomization resource {res}"):
            objs += load_yaml_all(p)
    by = {}
    for o in objs:
        by.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    for kind in ("Deployment", "ConfigMap", "Secret", "Service",
                 "PodDisruptionBudget", "PersistentVolumeClaim"):
        check(kind in by, f"k8s: a {kind}")
    dep = by.get("Deployment", {}).get("spotagent")
    if not dep:
        fail("k8s: Deployment spotagent")
        return
    spec = dep["spec"]
    check(spec.get("replicas") == 1, "k8s: replicas 1 (one journal, one "
          "session per client id)")
    check(spec.get("strategy", {}).get("type") == "Recreate",
          "k8s: strategy Recreate (never two agents on one journal)")
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in
              spec["selector"]["matchLabels"].items()),
          "k8s: the Deployment's selector matches its pods")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0,
          "k8s: pod runs as non-root")
    check(psc.get("fsGroup") == psc.get("runAsGroup"),
          "k8s: fsGroup lets the agent write the volume")
    ctr = pod["containers"][0]
    csc = ctr.get("securityContext", {})
    check(csc.get("readOnlyRootFilesystem") is True,
          "k8s: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False,
          "k8s: allowPrivilegeEscalation false")
    check("ALL" in csc.get("capabilities", {}).get("drop", []),
          "k8s: capabilities dropped")
    res = ctr.get("resources", {})
    check(res.get("requests") and res.get("limits", {}).get("memory"),
          "k8s: resources (requests, memory limit)")
    ports = {p.get("name"): p["containerPort"] for p in ctr.get("ports", [])}
    check(8080 in ports.values(), "k8s: containerPort 8080")

    def probe(kind):
        p = ctr.get(kind, {}).get("httpGet", {})
        port = p.get("port")
        port = ports.get(port, port)
        return p.get("path"), port
    check(probe("livenessProbe") == ("/health", 8080),
          f"k8s: liveness on /health:8080 {probe('livenessProbe')}")
    check(probe("readinessProbe") == ("/ready", 8080),
          f"k8s: readiness on /ready:8080 {probe('readinessProbe')}")
    if "startupProbe" in ctr:
        check(probe("startupProbe")[0] == "/health", "k8s: startup on /health")
    env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
    for k in env:
        check(k in known_vars, f"k8s: the agent reads {k}")
    check(str(env.get("SPOTAGENT_HTTP_LISTEN", "")).endswith(":8080")
          and not str(env.get("SPOTAGENT_HTTP_LISTEN")).startswith("127."),
          "k8s: SPOTAGENT_HTTP_LISTEN beyond loopback on 8080")
    check(env.get("SPOTAGENT_MQTT_CLIENT_ID"),
          "k8s: a fixed SPOTAGENT_MQTT_CLIENT_ID (pod names change)")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts", [])}

    def file_source(path):
        """(volume, key) serving the file at path."""
        for mp, vname in mounts.items():
            if path.startswith(mp.rstrip("/") + "/"):
                return vols.get(vname), path[len(mp.rstrip("/")) + 1:]
        return None, None
    data_dir = env.get("SPOTAGENT_DATA_DIR")
    dv = vols.get(mounts.get(data_dir, ""), {})
    claim = dv.get("persistentVolumeClaim", {}).get("claimName")
    check(claim in by.get("PersistentVolumeClaim", {}),
          f"k8s: the data dir {data_dir} is the PVC {claim}")
    pvc = by.get("PersistentVolumeClaim", {}).get(claim, {})
    check(pvc.get("spec", {}).get("accessModes") == ["ReadWriteOnce"],
          "k8s: the PVC is ReadWriteOnce")
    for k, v in env.items():
        if k.endswith("_FILE"):
            check(k[:-5] in secrets, f"k8s: {k} is a secret option")
            vol, key = file_source(v)
            sname = (vol or {}).get("secret", {}).get("secretName")
            sec = by.get("Secret", {}).get(sname, {})
            keys = set(sec.get("stringData", {})) | set(sec.get("data", {}))
            check(sname and key in keys,
                  f"k8s: {k}={v} is key {key} of Secret {sname}")
    args = ctr.get("args", [])
    cfg_path = args[args.index("--config") + 1] if "--config" in args else None
    check(cfg_path, "k8s: the agent gets --config")
    vol, key = file_source(cfg_path or "")
    cname = (vol or {}).get("configMap", {}).get("name")
    cm = by.get("ConfigMap", {}).get(cname, {})
    text = cm.get("data", {}).get(key)
    if check(text, f"k8s: --config {cfg_path} is key {key} of ConfigMap "
             f"{cname}"):
        try:
            cfg = json.loads(text)
            ok("k8s: the ConfigMap's config file is JSON")
            check(cfg.get("service_groups"), "k8s: config has service_groups")
            for k in ("pg_url", "mqtt_password", "orion_token"):
                check(k not in cfg, f"k8s: no secret ({k}) in the ConfigMap")
            for k in ("mqtt_ca", "mqtt_cert", "mqtt_key"):
                if k in cfg:
                    vol, fkey = file_source(cfg[k])
                    sname = (vol or {}).get("secret", {}).get("secretName")
                    sec = by.get("Secret", {}).get(sname, {})
                    keys = set(sec.get("stringData", {})) | set(
                        sec.get("data", {}))
                    check(fkey in keys, f"k8s: {k} {cfg[k]} is key {fkey} "
                          f"of Secret {sname}")
            with open(os.path.join(out, "k8s-config.json"), "w") as f:
                json.dump(cfg, f, indent=1)
        except ValueError as e:
            fail(f"k8s: the ConfigMap's config is not JSON: {e}")
    for name, svc in by.get("Service", {}).items():
        sel = svc["spec"]["selector"]
        check(all(labels.get(k) == v for k, v in sel.items()),
              f"k8s: Service {name} selects the agent's pods")
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort")
            check(ports.get(tp, tp) == 8080 and p["port"] == 8080,
                  f"k8s: Service {name} port {p['port']} -> 8080")
    for name, pdb in by.get("PodDisruptionBudget", {}).items():
        sel = pdb["spec"]["selector"]["matchLabels"]
        check(all(labels.get(k) == v for k, v in sel.items()),
              f"k8s: PDB {name} selects the agent's pods")
    ann = spec["template"]["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/port") == "8080" and
          ann.get("prometheus.io/path") == "/metrics",
          "k8s: Prometheus annotations point at :8080/metrics")


# --- Prometheus and Grafana -------------------------------------------------

def check_prometheus(root, metrics):
    d = os.path.join(root, "deploy/prometheus")
    conf = (load_yaml_all(os.path.join(d, "prometheus.yml")) or [{}])[0]
    for rf in conf.get("rule_files", []):
        check(os.path.exists(os.path.join(d, rf)),
              f"prometheus: rule file {rf} exists")
    jobs = {j["job_name"]: j for j in conf.get("scrape_configs", [])}
    text = read(os.path.join(d, "prometheus.yml"))
    check(jobs.get("spotagent", {}).get("metrics_path") == "/metrics",
          "prometheus: job spotagent scrapes /metrics")
    for sc in jobs.get("spotagent", {}).get("static_configs", []):
        for t in sc.get("targets", []):
            check(t.endswith(":8080"), f"prometheus: target {t} on 8080")
    check(re.search(r"http://[^\"]+:8080/ready", text),
          "prometheus: the readiness probe targets /ready on 8080")
    rules = (load_yaml_all(os.path.join(d, "spotagent-alerts.yml")) or [{}])[0]
    alerts = [r for g in rules.get("groups", []) for r in g.get("rules", [])]
    exprs = " ".join(r.get("expr", "") for r in alerts)
    check_metric_names("alert rules", metric_names_in(exprs), metrics)
    for r in alerts:
        check(r.get("alert") and r.get("expr") and r.get("for")
              and r.get("labels", {}).get("severity")
              and r.get("annotations", {}).get("summary"),
              f"prometheus: alert {r.get('alert')} has expr, for, severity, "
              "summary")
        # Jobs named in expressions exist.
        for job in re.findall(r'job=~?"([^"]+)"', r.get("expr", "")):
            check(all(j in jobs for j in job.split("|")),
                  f"prometheus: {r.get('alert')} names existing job(s) {job}")
    names = " ".join(r.get("alert", "") for r in alerts)
    for want in ("Down", "NotReady", "Backlog", "Rejects"):
        check(want in names, f"prometheus: an alert for {want}")
    by_name = {r["alert"]: r for r in alerts if r.get("alert")}
    nr = by_name.get("SpotagentNotReady", {})
    check(nr.get("for") == "5m", "prometheus: not ready for 5 minutes")


def check_grafana(root, out, metrics):
    d = os.path.join(root, "deploy/grafana")
    ds = (load_yaml_all(os.path.join(d, "datasources.yml")) or [{}])[0]
    uids = {x["uid"]: x["type"] for x in ds.get("datasources", [])}
    path = os.path.join(d, "spotagent-dashboard.json")
    try:
        dash = json.loads(read(path))
        ok(f"{path}: JSON parses")
    except ValueError as e:
        fail(f"{path}: not JSON: {e}")
        return
    panels = []

    def walk(ps):
        for p in ps:
            panels.append(p)
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    exprs, sqls, used = [], [], set()
    for p in panels:
        for t in p.get("targets", []) + [p]:
            dsr = t.get("datasource")
            if isinstance(dsr, dict) and dsr.get("uid"):
                used.add(dsr["uid"])
                check(uids.get(dsr["uid"]) == dsr.get("type"),
                      f"grafana: '{p.get('title')}' uses data source "
                      f"{dsr['uid']} of datasources.yml")
        for t in p.get("targets", []):
            if "expr" in t:
                exprs.append(t["expr"])
            if "rawSql" in t:
                sqls.append((p.get("title"), t["rawSql"]))
    for v in dash.get("templating", {}).get("list", []):
        exprs.append(json.dumps(v.get("query", "")))
    check_metric_names("dashboard", metric_names_in(" ".join(exprs)), metrics)
    with open(os.path.join(out, "dashboard-exprs.txt"), "w") as f:
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    f.write(t["expr"].replace("\n", " ") + "\n")
    check(set(metrics) <= metric_names_in(" ".join(exprs)) | {
        m for m in metrics if any(m + s in " ".join(exprs)
                                  for s in ("_bucket", "_sum", "_count"))},
          "dashboard: every contract metric is on a panel")
    titles = " ".join(p.get("title", "") for p in panels).lower()
    for want in ("vertical", "reason", "backlog", "latency", "broker"):
        check(want in titles, f"dashboard: a panel about {want}")
    tables = set()
    for title, q in sqls:
        tables |= set(re.findall(r"\bFROM\s+([a-z_]+)", q, re.I))
    check(tables <= CONTRACT_TABLES, f"dashboard: SQL reads contract tables "
          f"only ({sorted(tables)})")
    check("rejected_message" in tables and "air_quality" in tables,
          "dashboard: panels over the vertical tables and rejected_message")
    os.makedirs(os.path.join(out, "sql"), exist_ok=True)
    for i, (title, q) in enumerate(sqls):
        with open(os.path.join(out, "sql", f"{i:02d}.sql"), "w") as f:
            f.write(f"-- {title}\n{q}\n")
    ok(f"dashboard: {len(sqls)} SQL queries written for PostgreSQL")


# --- Mosquitto --------------------------------------------------------------

def mosquitto_conf(path):
    opts = {}
    for line in read(path).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition(" ")
            opts.setdefault(k, []).append(v.strip())
    return opts


def check_mosquitto(root):
    d = os.path.join(root, "deploy/mosquitto")
    expect = {"mosquitto-tls.conf": PORTS["mqtts"],
              "mosquitto-password.conf": PORTS["mqtts"],
              "mosquitto-compose.conf": PORTS["mqtt"]}
    for name, port in expect.items():
        o = mosquitto_conf(os.path.join(d, name))
        check(o.get("listener", [""])[0].split()[0] == str(port),
              f"{name}: listener on {port}")
        check(o.get("persistence") == ["true"], f"{name}: persistence true")
        q = int(o.get("max_queued_messages", ["1000"])[0])
        check(q >= 100000, f"{name}: max_queued_messages raised ({q})")
        check("max_queued_bytes" in o, f"{name}: max_queued_bytes set")
        check("1000" in read(os.path.join(d, name)) and "drop" in
              read(os.path.join(d, name)).lower(),
              f"{name}: explains the default of 1000 and the drops")
        if port == PORTS["mqtts"]:
            check(o.get("allow_anonymous") == ["false"],
                  f"{name}: allow_anonymous false")
            check(o.get("acl_file"), f"{name}: acl_file")
            for k in ("cafile", "certfile", "keyfile"):
                check(k in o, f"{name}: {k}")
    tls = mosquitto_conf(os.path.join(d, "mosquitto-tls.conf"))
    check(tls.get("require_certificate") == ["true"],
          "mosquitto-tls.conf: require_certificate true")
    check(tls.get("use_identity_as_username") == ["true"],
          "mosquitto-tls.conf: use_identity_as_username true")
    pw = mosquitto_conf(os.path.join(d, "mosquitto-password.conf"))
    check(pw.get("password_file"), "mosquitto-password.conf: password_file")
    acl = read(os.path.join(d, "acl"))
    check(re.search(r"^user spotagent\ntopic read /\+/\+/attrs$", acl, re.M),
          "acl: spotagent reads /+/+/attrs")
    pats = re.findall(r"^pattern write (\S+)$", acl, re.M)
    codes = {p.split("/")[1][-3:] for p in pats if p.endswith("/attrs")
             and "%u_" in p}
    check(codes == {"aqo", "nlo", "wto", "cfo", "cfe", "dev", "dho"},
          f"acl: a %u pattern per vertical ({sorted(codes)})")
    check(all(p.split("/")[2].upper().endswith(p.split("/")[1][-3:].upper())
              for p in pats if "%u_" in p),
          "acl: each pattern's device suffix matches its vertical code")
    check("%c" in acl, "acl: explains %c")


# --- systemd ----------------------------------------------------------------

def check_systemd(root, known_vars, secrets):
    path = os.path.join(root, "deploy/systemd/spotagent.service")
    cp = configparser.ConfigParser(strict=False, interpolation=None,
                                   delimiters=("=",))
    cp.optionxform = str
    # configparser keeps only the last of repeated keys: collect them all.
    multi = {}
    for line in read(path).splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            multi.setdefault(k.strip(), []).append(v.strip())
    s = {k: v[-1] for k, v in multi.items()}
    check(s.get("ExecStart", "").split()[0].endswith("/spotagent"),
          "systemd: ExecStart runs spotagent")
    check(s.get("DynamicUser") == "yes" or s.get("User"),
          "systemd: DynamicUser or a dedicated User")
    check(s.get("StateDirectory") == "spotagent", "systemd: StateDirectory")
    check("${STATE_DIRECTORY}" in s.get("ExecStart", "")
          or "SPOTAGENT_DATA_DIR" in read(path),
          "systemd: the journal goes to the state directory")
    for k, v in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                 ("PrivateTmp", "yes"), ("Restart", "on-failure"),
                 ("KillSignal", "SIGTERM"),
                 ("EnvironmentFile", "/etc/spotagent/spotagent.env")):
        check(s.get(k) == v, f"systemd: {k}={v}")
    check(s.get("RestrictAddressFamilies"), "systemd: RestrictAddressFamilies")
    check(s.get("MemoryMax"), "systemd: MemoryMax")
    t = re.match(r"(\d+)s?$", s.get("TimeoutStopSec", ""))
    check(t and int(t.group(1)) > 5,
          f"systemd: TimeoutStopSec {s.get('TimeoutStopSec')} > 5 s drain")
    creds = {v.split(":")[0] for v in multi.get("LoadCredential", [])}
    envs = [v for v in multi.get("Environment", [])]
    files = [e for e in envs if re.match(r"SPOTAGENT_\w+_FILE=%d/", e)]
    check(files, "systemd: a secret as SPOTAGENT_*_FILE=%d/... "
          "(LoadCredential)")
    for e in files:
        var, _, val = e.partition("=")
        check(var[:-5] in secrets, f"systemd: {var} is a secret option")
        check(val[3:] in creds, f"systemd: {val} is a LoadCredential")
    with open(os.path.join(root, "deploy/systemd/spotagent.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                var = line.split("=")[0]
                check(var in known_vars, f"spotagent.env: the agent reads "
                      f"{var}")
                check(var not in secrets,
                      f"spotagent.env: {var} is no secret")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", required=True)
    ap.add_argument("--help-text", required=True,
                    help="file holding `spotagent --help`")
    ap.add_argument("--contract")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    known, secrets = agent_variables(read(a.help_text))
    known.add("SPOTAGENT_CONFIG")
    check(len(known) > 10, f"spotagent --help lists {len(known)} variables "
          f"({len(secrets)} secrets)")
    metrics = contract_metrics(a.contract)
    files = []
    for sub in ("docker", "deploy"):
        for dp, _, fs in os.walk(os.path.join(a.root, sub)):
            files += [os.path.join(dp, f) for f in fs]
    ops = os.path.join(a.root, "docs/operations.md")
    if os.path.exists(ops):
        files.append(ops)
    check_variables(a.root, files, known)
    check_dockerfile(a.root, a.out)
    check_compose(a.root, a.out, known, secrets)
    check_k8s(a.root, a.out, known, secrets)
    check_prometheus(a.root, metrics)
    check_grafana(a.root, a.out, metrics)
    check_mosquitto(a.root)
    check_systemd(a.root, known, secrets)
    with open(os.path.join(a.out, "metrics.txt"), "w") as f:
        f.write("\n".join(sorted(metrics)) + "\n")
    print(f"check_deploy: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
