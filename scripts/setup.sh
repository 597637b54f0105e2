#!/usr/bin/env bash
# Sets up everything rpmflow needs on a fresh Debian machine: system packages (when root),
# the virtual environment and the project with all extras. Idempotent: fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=${RPMFLOW_SETUP_BROWSER:-0}
pkgs=()
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs+=(postgresql postgresql-contrib)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || pkgs+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || pkgs+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
command -v dbus-daemon >/dev/null 2>&1 || pkgs+=(dbus)  # a private bus for the Bluetooth-failure tests
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then pkgs+=(chromium); fi
command -v python3 >/dev/null 2>&1 || pkgs+=(python3 python3-venv)

if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  else
    echo "setup: missing Debian packages; run as root:  apt-get install -y ${pkgs[*]}" >&2
    exit 1
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.rpmflow-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing rpmflow and its dependencies into .venv ..."
  log=$(mktemp)
  if ! { .venv/bin/python -m pip install -q --upgrade pip && \
         .venv/bin/python -m pip install -q -e '.[gateway,server,dev]'; } >"$log" 2>&1; then
    grep -v "is ignored" "$log" >&2
    rm -f "$log"
    echo "setup: pip install failed" >&2
    exit 1
  fi
  rm -f "$log"
  touch "$stamp"
fi
