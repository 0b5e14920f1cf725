#!/usr/bin/env bash
# Offline checks of the deployment files: the Kubernetes manifests (infra/k8s) against Kubernetes' own schemas
# and against each other (infra/check.py, with kubernetes-validate from PyPI, which ships the schemas), and the
# Prometheus alert rules and configuration (infra/monitoring) with promtool: syntax, and the rules' unit tests.
# Installs what it needs: a virtual environment in $IOT_CACHE/infra-venv, and promtool (Debian's prometheus
# package) with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${IOT_CACHE:-$HOME/.cache/iot-pipeline}"
VENV="$CACHE/infra-venv"
if ! "$VENV/bin/python" -c 'import kubernetes_validate' 2>/dev/null ||
    ! cmp -s infra/requirements.txt "$VENV/requirements.txt"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r infra/requirements.txt
    cp infra/requirements.txt "$VENV/requirements.txt"
fi
if ! command -v promtool >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "infra/test.sh: installing promtool (Debian's prometheus package) with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
"$VENV/bin/python" infra/check.py
promtool check rules infra/monitoring/alerts.yml
promtool check config infra/monitoring/prometheus.yml
promtool test rules infra/monitoring/alerts_test.yml
