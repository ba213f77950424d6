#!/bin/bash
# Time `vimg commit` against `qemu-img commit`, alternating, each on fresh
# copies of the same chain, with the page cache written back (sync) inside
# the timing: commit writes into the parent, so a run cannot be repeated on
# its own output as bench/pairs.py repeats read-only commands.
#
# usage: bench/commit.sh BASE DELTA [PAIRS]   (DELTA's parent is BASE, by
# its file name; both are copied into a work folder beside them)
set -euo pipefail
base=$1 delta=$2 pairs=${3:-3}
vimg=${VIMG:-$(dirname "$0")/../target/release/vimg}
work=$(dirname "$delta")/commit-bench
for i in $(seq "$pairs"); do
  for tool in vimg qemu-img; do
    rm -rf "$work" && mkdir "$work" && cp "$base" "$delta" "$work"/ && sync
    start=$(date +%s.%N)
    case $tool in
      vimg) (cd "$work" && "$vimg" commit -q "$(basename "$delta")") ;;
      qemu-img) (cd "$work" && qemu-img commit -q "$(basename "$delta")") ;;
    esac
    sync
    echo "$tool $(echo "$(date +%s.%N) - $start" | bc)"
  done
done
rm -rf "$work"
