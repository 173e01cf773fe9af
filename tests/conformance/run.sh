#!/usr/bin/env bash
# Foreign-client conformance suite: `btsdr sim` probed over TLS (certificate validated) by
# clients nobody here wrote. Installs them into target/conformance/ (PyPI, npm) unless present;
# the Debian packages (freetds-bin: freebcp; tdsodbc, unixodbc) come from .ci/run.
# usage: tests/conformance/run.sh [path/to/btsdr]   (default: target/debug/btsdr)
# Prints each probe and `CLIENT: N/M passed`; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
btsdr=${1:-$root/target/debug/btsdr}
work=$root/target/conformance
mkdir -p "$work"

if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
fi
"$work/venv/bin/python" -c 'import pytds, pyodbc, mssql_python' 2>/dev/null ||
  "$work/venv/bin/pip" install -q python-tds pyOpenSSL pyodbc mssql-python
if [ ! -d "$work/node_modules/tedious" ]; then
  (cd "$work" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --silent tedious)
fi

port=${BTSDR_CONFORMANCE_PORT:-14430}
log=$work/sim.log
"$btsdr" sim --scenario healthy --listen "127.0.0.1:$port" >"$log" 2>&1 &
sim=$!
# Ctrl-C (SIGINT) lets `btsdr sim` shut down and remove its CA directory.
trap 'kill -INT "$sim" 2>/dev/null && wait "$sim" 2>/dev/null || true' EXIT
ca=
for _ in $(seq 1 100); do
  ca=$(sed -n 's/^trust_cert_ca = "\(.*\)"$/\1/p' "$log" | head -n 1)
  [ -n "$ca" ] && break
  kill -0 "$sim" 2>/dev/null || { cat "$log"; echo "btsdr sim exited"; exit 1; }
  sleep 0.2
done
[ -n "$ca" ] || { cat "$log"; echo "btsdr sim printed no trust_cert_ca"; exit 1; }
user=$(sed -n 's/^Login: \([^ ]*\) \/ \(.*\)$/\1/p' "$log")
pass=$(sed -n 's/^Login: \([^ ]*\) \/ \(.*\)$/\2/p' "$log")

# A CA that did not sign the simulator's certificate: every client must refuse it.
wrong=$work/wrong-ca.pem
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/wrong-ca.key" -out "$wrong" \
  -subj "/CN=not the simulator" -days 2 >/dev/null 2>&1

status=0
summary=()
run() {
  local name=$1
  shift
  local out
  if out=$("$@" 2>&1); then :; else status=1; fi
  printf '%s\n' "$out"
  summary+=("$(printf '%s\n' "$out" | grep -E "^$name: [0-9]+/[0-9]+ passed" || echo "$name: did not finish")")
}
py=$work/venv/bin/python
run python-tds "$py" tests/conformance/probe.py python-tds 127.0.0.1 "$port" "$user" "$pass" "$ca" "$wrong"
run pyodbc-freetds "$py" tests/conformance/probe.py pyodbc-freetds 127.0.0.1 "$port" "$user" "$pass" "$ca" "$wrong"
# ODBC Driver 18 validates against OpenSSL's default store: point it at the simulator's CA.
run mssql-python env SSL_CERT_FILE="$ca" "$py" tests/conformance/probe.py mssql-python 127.0.0.1 "$port" "$user" "$pass" "$ca" "$wrong"
run tedious env NODE_PATH="$work/node_modules" node tests/conformance/probe.js 127.0.0.1 "$port" "$user" "$pass" "$ca" "$wrong"
run freebcp bash tests/conformance/probe_freebcp.sh 127.0.0.1 "$port" "$user" "$pass" "$ca"

echo
echo "conformance over TLS (certificate validated):"
printf '  %s\n' "${summary[@]}"
exit $status
