#!/usr/bin/env bash
# Regenerates the generated allowlist profiles (pytorch, sklearn) and the list of globals
# ordinary artifacts import (used by the policy tests), from the libraries themselves.
#
#   AIRLOCK_VENV=/path/to/venv scripts/policy/gen-profiles.sh   # reuse a virtualenv
#   scripts/policy/gen-profiles.sh                              # make target/policy-venv
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${AIRLOCK_VENV:-$root/target/policy-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    # The versions the committed profiles were generated from.
    "$venv/bin/pip" install --quiet torch==2.15.0 numpy==2.4.6 scikit-learn==1.9.1 joblib==1.6.0 scipy==1.17.1
fi
py="$venv/bin/python"
out="$root/crates/airlock/src/policy/profiles"
"$py" "$root/scripts/policy/observe_globals.py" pytorch "$out/pytorch.rs"
"$py" "$root/scripts/policy/observe_globals.py" sklearn "$out/sklearn.rs"
"$py" "$root/scripts/policy/observe_globals.py" observe "$out/observed.tsv"
