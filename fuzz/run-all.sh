#!/usr/bin/env bash
# Run fuzz targets one after another, each seeded from the committed fixtures, and record what
# each run did (wall and CPU seconds, runs, crashes) in fuzz/out/runs.tsv.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]      # default: 600 s, every target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); works on a stable toolchain through
# RUSTC_BOOTSTRAP=1. Builds once, with `-O` and no sanitizer (`-s none`): the targets are safe
# Rust, so a sanitizer adds cost without finding anything a panic or an abort would not. The
# writable corpus is fuzz/corpus/<target> (gitignored); crashes land in fuzz/artifacts/<target>/
# and must become regression tests beside the parser they broke (see README.md).
#
# CPU seconds are reported beside wall seconds so that a run paused (SIGSTOP) to keep a
# benchmark quiet can be told apart from a full one.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
all=(pickle_engine zip_reader zip_image npy_header scan_bytes safetensors gguf keras_config hdf5
    savedmodel onnx identify template convert convert_roundtrip)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

fx=../tests/fixtures
# Every 20th oracle case as a file of its own (the manifest is one JSON-lines file, which as a
# seed is just text): dangerous pickles in every container, for the bad-input modes' "never
# safer when wrapped" and "dangerous stays dangerous" checks. In out/ (gitignored); the
# fuzzer reads them, nothing loads them.
oracle_seeds=out/oracle-seeds
mkdir -p "$oracle_seeds"
python3 - "$fx/oracle/cases.jsonl" "$oracle_seeds" <<'PY'
import base64, json, sys
for i, line in enumerate(open(sys.argv[1])):
    if i % 20 == 0:
        row = json.loads(line)
        open(f"{sys.argv[2]}/{i}.bin", "wb").write(base64.b64decode(row["data"]))
PY
seeds_for() {
    case $1 in
        pickle_engine) echo "$fx/benign $oracle_seeds" ;;
        zip_reader) echo "$fx/benign $fx/fuzz/zip_image $fx/convert $oracle_seeds" ;;
        zip_image) echo "$fx/benign $fx/fuzz/zip_image $fx/convert" ;;
        npy_header) echo "$fx/benign" ;;
        scan_bytes) echo "$fx/benign $fx/formats/misc $fx/formats/keras $oracle_seeds" ;;
        safetensors) echo "$fx/formats/safetensors" ;;
        gguf) echo "$fx/formats/gguf" ;;
        keras_config | hdf5) echo "$fx/formats/keras" ;;
        savedmodel) echo "$fx/formats/savedmodel" ;;
        onnx) echo "$fx/formats/onnx" ;;
        identify) echo "$fx/formats/misc $fx/formats/keras" ;;
        template) echo "$fx/templates" ;;
        convert) echo "$fx/convert" ;;
        convert_roundtrip) echo "" ;;
        *) echo "unknown target $1" >&2; exit 2 ;;
    esac
}

export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -s none "${targets[@]/#/--fuzz-target=}" 2>/dev/null ||
    for t in "${targets[@]}"; do cargo fuzz build -O -s none "$t"; done

mkdir -p out
[[ -f out/runs.tsv ]] || printf 'date\ttarget\tcommit\twall_s\tcpu_s\truns\tcrashes\n' >out/runs.tsv
commit=$(git rev-parse --short HEAD)
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="out/$t.log"
    # shellcheck disable=SC2046
    /usr/bin/time -f '%e %U %S' -o "out/$t.time" \
        cargo fuzz run -O -s none "$t" "corpus/$t" $(seeds_for "$t") -- \
        -max_total_time="$secs" -max_len=65536 -timeout=20 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || true
    read -r wall user sys <"out/$t.time"
    cpu=$(echo "$user + $sys" | bc)
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "?")
    crashes=$(find "artifacts/$t" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$t" "$commit" "$wall" "$cpu" \
        "$runs" "$crashes" | tee -a out/runs.tsv
done
