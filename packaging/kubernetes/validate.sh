#!/usr/bin/env bash
# Validates Kubernetes manifests offline against the API's published schemas (strict: unknown
# fields are errors) with kubernetes-validate from PyPI, installed on first use into a virtual
# environment under target/ (pinned; its schemas ship with it, so no cluster and no network
# once installed).
#
#   bash packaging/kubernetes/validate.sh [FILE...]    # default: packaging/kubernetes/oomward.yaml
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/target/kubernetes-validate"
version=1.37.0
if [ ! -x "$venv/bin/kubernetes-validate" ] ||
  [ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null)" != "$version" ]; then
  exec 9>"$repo/target/.kubernetes-validate.lock"
  flock 9
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$version" >&2
fi
[ $# -gt 0 ] || set -- "$repo/packaging/kubernetes/oomward.yaml"
exec "$venv/bin/kubernetes-validate" --strict "$@"
