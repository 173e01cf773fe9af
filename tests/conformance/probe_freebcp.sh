#!/usr/bin/env bash
# FreeTDS's freebcp (Debian's freetds-bin) against `btsdr sim` over TLS, the certificate
# validated: `queryout` asks for the columns first (SET FMTONLY ON), then the rows.
# usage: probe_freebcp.sh HOST PORT USER PASSWORD CA_PEM
# Prints PASS/FAIL lines and `freebcp: N/M passed`; exits 1 on any failure.
set -uo pipefail
host=$1 port=$2 user=$3 pass=$4 ca=$5
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '[btsdrsim]\n\thost = %s\n\tport = %s\n\ttds version = 7.4\n\tencryption = require\n\tca file = %s\n' \
  "$host" "$port" "$ca" >"$dir/freetds.conf"
passed=0 total=0
check() {
  total=$((total + 1))
  if [ "$2" = ok ]; then passed=$((passed + 1)); echo "PASS freebcp $1"; else echo "FAIL freebcp $1: $2"; fi
}
bcp() { FREETDSCONF="$dir/freetds.conf" timeout 30 freebcp "$@" -S btsdrsim -U "$user" -P "$pass" -c; }
if out=$(bcp "SELECT name, database_id FROM sys.databases ORDER BY database_id" queryout "$dir/dbs.txt" 2>&1) &&
  [ "$(head -n 1 "$dir/dbs.txt")" = "$(printf 'master\t1')" ] && grep -q "$(printf '^msdb\t')" "$dir/dbs.txt"; then
  check queryout ok
else
  check queryout "$out $(head -c 200 "$dir/dbs.txt" 2>/dev/null)"
fi
if out=$(bcp "SELECT name FROM sys.databases WHERE 1 = 0" queryout "$dir/none.txt" 2>&1) &&
  [ ! -s "$dir/none.txt" ] && grep -q "^0 rows copied" <<<"$out"; then
  check queryout_no_rows ok
else
  check queryout_no_rows "$out"
fi
echo "freebcp: $passed/$total passed"
[ "$passed" = "$total" ]
