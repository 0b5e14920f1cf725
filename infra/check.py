"""Offline checks of the deployment files (run by infra/test.sh):

- every manifest of infra/k8s validates, strictly (no unknown field), against Kubernetes' schemas of the oldest
  version it supports (1.28: the pod-index label the process index comes from) and of the newest one known;
- the cluster is consistent: the host file in the ConfigMap has one line per replica of the StatefulSet, each
  naming pod i under the headless Service on the timely port, and the job's --processes equals the replicas;
  the process index comes from the pod ordinal; the probes reach the health endpoint on --health-addr's port;
- every metric that alerts.yml and the Grafana dashboard name is one the dashboard exports.

Each failure is printed with what to fix; the exit status is the number of failures.
"""

import json
import re
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "infra" / "k8s"
MONITORING = ROOT / "infra" / "monitoring"
VERSIONS = ["1.28.0", "1.37.0"]

failures = []


def fail(what):
    failures.append(what)
    print(f"FAIL {what}")


def manifests():
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def validate_schemas():
    for path, doc in manifests():
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']} against {version}: {e.message} at {list(e.path)}")
            except Exception as e:  # an unknown kind or version
                fail(f"{path.name}: {doc.get('kind')}: cannot validate against {version}: {e}")


def find(kind, name):
    for path, doc in manifests():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    fail(f"no {kind} {name} in infra/k8s")
    return None


def flag(args, name):
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def check_cluster():
    sts = find("StatefulSet", "iot-dataflow")
    svc = find("Service", "iot-dataflow")
    config = find("ConfigMap", "iot-job")
    if not (sts and svc and config):
        return
    spec = sts["spec"]
    replicas = spec["replicas"]
    namespace = sts["metadata"]["namespace"]
    if spec.get("podManagementPolicy") != "Parallel":
        fail("the StatefulSet must start its pods in parallel (podManagementPolicy: Parallel): they wait for each other")
    if spec["serviceName"] != svc["metadata"]["name"] or svc["spec"].get("clusterIP") != "None":
        fail("the StatefulSet's serviceName must be its headless Service (clusterIP: None)")
    if not svc["spec"].get("publishNotReadyAddresses"):
        fail("the headless Service must publish not-ready addresses: the processes resolve each other before readiness")
    container = spec["template"]["spec"]["containers"][0]
    args = container["args"]
    if flag(args, "processes") != str(replicas):
        fail(f"--processes={flag(args, 'processes')} but the StatefulSet has {replicas} replicas")
    if flag(args, "process") != "$(POD_INDEX)":
        fail("--process must be $(POD_INDEX), the pod ordinal")
    env = {e["name"]: e for e in container.get("env", [])}
    field = env.get("POD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if field != "metadata.labels['apps.kubernetes.io/pod-index']":
        fail("POD_INDEX must come from the label apps.kubernetes.io/pod-index")
    hostfile = flag(args, "hostfile") or ""
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    if str(Path(hostfile).parent) not in mounts:
        fail(f"--hostfile={hostfile} is not in a mounted volume")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    hosts = [h for h in config["data"].get("hosts", "").splitlines() if h.strip()]
    if len(hosts) != replicas:
        fail(f"the host file lists {len(hosts)} processes but the StatefulSet has {replicas} replicas")
    for i, line in enumerate(hosts):
        expected = f"{sts['metadata']['name']}-{i}.{svc['metadata']['name']}.{namespace}.svc.cluster.local:{ports.get('timely')}"
        if line != expected:
            fail(f"host file line {i}: {line!r}, expected {expected!r}")
    health = flag(args, "health-addr") or ""
    if not health.endswith(f":{ports.get('health')}"):
        fail(f"--health-addr={health} is not the container's health port {ports.get('health')}")
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        got = container.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") != "health":
            fail(f"the {probe} must GET {path} on the health port")
    if "memory" not in container.get("resources", {}).get("requests", {}):
        fail("the job's container must request memory")


def exported_metrics():
    source = (ROOT / "dashboard" / "src" / "snapshot" / "prometheus.rs").read_text()
    return set(re.findall(r'"(iot_[a-z_]+)"', source))


def check_metrics():
    exported = exported_metrics()
    if len(exported) < 10:
        fail("cannot read the exported metrics from dashboard/src/snapshot/prometheus.rs")
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    grafana = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in grafana["panels"] for t in p.get("targets", [])]
    for expr in exprs:
        for name in re.findall(r"\b(iot_[a-z_]+)", expr):
            if name not in exported:
                fail(f"{name} (in {expr!r}) is not a metric the dashboard exports")


validate_schemas()
check_cluster()
check_metrics()
print(f"infra checks: {len(failures)} failed" if failures else "infra checks: all passed")
sys.exit(min(len(failures), 100))
