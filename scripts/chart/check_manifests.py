"""Validate rendered Kubernetes manifests offline, and check the chart's pod hardening.

Usage: check_manifests.py [-k VERSION]... [--skip-kind GROUP/VERSION/KIND]...
                          [--expect-kind KIND]... [--forbid-kind KIND]... FILE...

Every document is validated against the Kubernetes OpenAPI schemas bundled in
kubernetes-validate, in strict mode (unknown fields are errors), for each -k version. A kind
with no bundled schema is an error (a misspelled apiVersion must not pass silently) unless it
is named with --skip-kind: the Prometheus Operator's CRD kinds, whose schemas are not bundled.
Pod templates must run hardened (non-root, read-only root filesystem, no capabilities,
RuntimeDefault seccomp) with /healthz and /readyz probes and resource requests. ConfigMaps and
Secrets must fit the API server's 1 MiB object limit. Exits 1 and names each problem.
"""

import argparse
import sys

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
MAX_OBJECT_BYTES = 1024 * 1024


def name_of(doc):
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{doc.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def pod_problems(doc):
    """Hardening and probe rules of the chart's pods."""
    spec = doc["spec"]["template"]["spec"]
    problems = []
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append("pod securityContext.runAsNonRoot is not true")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod securityContext.seccompProfile.type is not RuntimeDefault")
    for c in spec.get("initContainers", []) + spec["containers"]:
        where = f"container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{where}: capabilities.drop lacks ALL")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        ports = {p.get("name") for p in c.get("ports", [])}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path:
                problems.append(f"{where}: {probe} is not an HTTP GET of {path}")
            elif isinstance(get.get("port"), str) and get["port"] not in ports:
                problems.append(f"{where}: {probe} names port {get['port']!r}, not a container port")
        resources = c.get("resources") or {}
        if not (resources.get("requests") or {}).get("memory"):
            problems.append(f"{where}: no memory request")
        if not (resources.get("limits") or {}).get("memory"):
            problems.append(f"{where}: no memory limit")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True)
    parser.add_argument("--skip-kind", action="append", default=[],
                        help="GROUP/VERSION/KIND validated by no schema (a CRD's kind)")
    parser.add_argument("--expect-kind", action="append", default=[])
    parser.add_argument("--forbid-kind", action="append", default=[])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    errors, validated, skipped = [], 0, set()
    seen, kinds = set(), set()
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
        except (OSError, yaml.YAMLError) as e:
            errors.append(f"{path}: cannot read: {e}")
            continue
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                errors.append(f"{path}: a document without apiVersion and kind")
                continue
            what = f"{path}: {name_of(doc)}"
            kinds.add(doc["kind"])
            if name_of(doc) in seen:
                errors.append(f"{what}: rendered twice")
            seen.add(name_of(doc))
            if f"{doc['apiVersion']}/{doc['kind']}" in args.skip_kind:
                skipped.add(f"{doc['apiVersion']}/{doc['kind']}")
            else:
                for version in args.kubernetes_version:
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                    except ValidationError as e:
                        field = ".".join(str(p) for p in e.path) or "(top)"
                        errors.append(f"{what}: invalid for Kubernetes {version} at {field}: {e.message}")
                    except SchemaNotFoundError as e:
                        errors.append(f"{what}: {e.message} (misspelled, removed, or a CRD kind "
                                      "that needs --skip-kind)")
                validated += 1
            if doc["kind"] in WORKLOADS:
                errors.extend(f"{what}: {p}" for p in pod_problems(doc))
            if doc["kind"] in ("ConfigMap", "Secret"):
                size = len(yaml.safe_dump(doc).encode())
                if size > MAX_OBJECT_BYTES:
                    errors.append(f"{what}: {size} bytes, over the API server's 1 MiB limit")
    for kind in args.expect_kind:
        if kind not in kinds:
            errors.append(f"expected a {kind}, none rendered")
    for kind in args.forbid_kind:
        if kind in kinds:
            errors.append(f"a {kind} was rendered, none expected")

    for error in errors:
        print(f"  ERROR {error}")
    versions = ", ".join(args.kubernetes_version)
    print(f"  {validated} objects validated (strict) against Kubernetes {versions}"
          + (f"; not validated (no bundled schema): {', '.join(sorted(skipped))}" if skipped else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
