#!/usr/bin/env bash
# Starts a local S3-compatible server for the S3 tests of ardoise-files:
# s3s-fs (crates.io), listening on 127.0.0.1:9000, storing its objects under
# /var/cache/ardoise/s3-data, with a fixed test key and one bucket.
#
#   scripts/s3.sh            # install if missing, start if not listening
#
# Idempotent: does nothing when something already listens on the port.
# The binary is built once and kept under /var/cache/ardoise/tools.
# The tests read (these defaults match what this script starts):
#   ARDOISE_TEST_S3_ENDPOINT=http://127.0.0.1:9000
#   ARDOISE_TEST_S3_ACCESS_KEY=ardoise-test
#   ARDOISE_TEST_S3_SECRET_KEY=ardoise-test-secret
#   ARDOISE_TEST_S3_BUCKET=ardoise-test
set -euo pipefail

HOST=127.0.0.1
PORT="${ARDOISE_S3_PORT:-9000}"
TOOLS="${ARDOISE_TOOLS:-/var/cache/ardoise/tools}"
DATA="${ARDOISE_S3_DATA:-/var/cache/ardoise/s3-data}"
ACCESS_KEY="${ARDOISE_TEST_S3_ACCESS_KEY:-ardoise-test}"
SECRET_KEY="${ARDOISE_TEST_S3_SECRET_KEY:-ardoise-test-secret}"
BUCKET="${ARDOISE_TEST_S3_BUCKET:-ardoise-test}"
# 0.14.1 is the last release that builds with Rust 1.95 (later ones need 1.96).
VERSION="${S3S_FS_VERSION:-0.14.1}"
BIN="$TOOLS/bin/s3s-fs"

listening() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

# s3s-fs keeps each bucket as a folder of its data directory.
mkdir -p "$DATA/$BUCKET"

# s3s-fs resolves paths against its working folder: one started from a
# folder that was deleted since (a removed clone or worktree) answers every
# request with a 500. Such a server is stopped and started again.
for pid in $(pgrep -f "^$BIN " || true); do
  case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in
    *"(deleted)") echo "restarting s3s-fs: its working folder is gone" >&2
                  kill "$pid"; sleep 0.5 ;;
  esac
done

if listening; then
  exit 0
fi

if [ ! -x "$BIN" ]; then
  echo "installing s3s-fs $VERSION into $TOOLS (once; a few minutes)" >&2
  mkdir -p "$TOOLS"
  # A build folder of its own, so that it never waits on the project's.
  CARGO_TARGET_DIR="$TOOLS/build" cargo install "s3s-fs@$VERSION" --features binary \
    --locked --root "$TOOLS"
  rm -rf "$TOOLS/build"
fi

LOG="$DATA/../s3s-fs.log"
# Started from its data folder, which outlives any clone that starts it.
cd "$DATA"
setsid nohup "$BIN" --host "$HOST" --port "$PORT" \
  --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$DATA" >"$LOG" 2>&1 < /dev/null &

for _ in $(seq 1 50); do
  listening && exit 0
  sleep 0.2
done
echo "s3s-fs did not start listening on $HOST:$PORT; see $LOG" >&2
exit 1
