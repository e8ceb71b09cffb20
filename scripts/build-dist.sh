#!/usr/bin/env bash
# Build the binary Airlock distributes: target/dist/airlock.
#
#   scripts/build-dist.sh            # prints the path of the binary it built
#
# The `dist` profile (Cargo.toml) is the release profile with fat LTO and one codegen unit. On
# Linux with glibc the binary is also linked statically, as a static PIE (ASLR kept: Airlock
# parses hostile files, so its own addresses stay randomised). Why static: a dynamically linked
# airlock spends about 0.5 ms of every run loading libc, libm and libgcc_s and relocating
# against them, which is a quarter of a whole scan of a 1 GB checkpoint (see
# bench/RESULTS.md, 2026-12-04 21:00). The CLI uses nothing of glibc that needs dynamic loading
# (no NSS lookups, no iconv, no dlopen), and the link prints no warning.
#
# `crt-static` is passed to the final crate only (`cargo rustc ... -- -C ...`): given through
# RUSTFLAGS it would also reach the proc-macro crates, which cannot be built static. The
# link-time `cfg(target_feature = "crt-static")` of std and libc is decided in that final
# crate, so this is enough for a fully static binary.
#
# `cargo install --path crates/airlock-cli` (the README's quick start) gives the same code,
# dynamically linked and with thin LTO: it starts slower, and scans at the same speed.
set -euo pipefail
cd "$(dirname "$0")/.."

flags=()
case "$(rustc -vV | sed -n 's/^host: //p')" in
    *-linux-gnu) flags=(-C target-feature=+crt-static) ;;
esac
cargo rustc --locked --profile dist -p airlock-cli --bin airlock -- ${flags[@]+"${flags[@]}"} >&2
bin=target/dist/airlock
if [[ ${#flags[@]} -gt 0 ]] && command -v file >/dev/null && ! file "$bin" | grep -q 'static'; then
    echo "build-dist: $bin is not statically linked" >&2
    exit 1
fi
echo "$bin"
