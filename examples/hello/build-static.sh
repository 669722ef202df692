#!/bin/sh
# Builds hello as a static executable and copies it to examples/hello/dist/hello,
# the only file the FROM scratch Dockerfile needs. Uses its own target directory so it
# never waits on (or invalidates) the test build's.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target_dir=${HELLO_TARGET_DIR:-$root/target/hello-static}
triple=x86_64-unknown-linux-gnu
cd "$root"
RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols" \
    CARGO_TARGET_DIR="$target_dir" \
    cargo build --quiet --release -p hello --target "$triple"
mkdir -p "$here/dist"
# Copy then rename so a concurrent docker build never sees a half-written file.
cp "$target_dir/$triple/release/hello" "$here/dist/hello.tmp.$$"
mv -f "$here/dist/hello.tmp.$$" "$here/dist/hello"
echo "built $here/dist/hello"
