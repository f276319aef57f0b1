#!/usr/bin/env bash
# Architecture invariants that the compiler does not check:
# - ardoise-core does no I/O: it depends on neither sqlx, axum nor tokio;
# - only ardoise-store contains SQL: no other crate depends on sqlx;
# - ardoise-files depends on neither axum nor sqlx.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
deps() { cargo tree -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u; }
for forbidden in sqlx axum tokio hyper; do
  if deps ardoise-core | grep -qx "$forbidden"; then echo "ardoise-core must not depend on $forbidden" >&2; fail=1; fi
done
for crate in ardoise-web ardoise ardoise-admission; do
  if cargo tree -p "$crate" -e normal --depth 1 --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | grep -qx sqlx; then
    echo "$crate must not depend on sqlx directly: SQL lives in ardoise-store" >&2; fail=1
  fi
done
# The file store hands bytes and errors to the web layer; no web or SQL types.
for forbidden in sqlx axum; do
  if cargo tree -p ardoise-files -e normal --depth 1 --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | grep -qx "$forbidden"; then
    echo "ardoise-files must not depend on $forbidden" >&2; fail=1
  fi
done
if grep -rEn --include='*.rs' '"(SELECT|INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM) ' crates | grep -v '^crates/ardoise-store/' ; then
  echo "SQL found outside ardoise-store (above)" >&2; fail=1
fi
[ "$fail" = 0 ] && echo "boundaries hold"
exit "$fail"
