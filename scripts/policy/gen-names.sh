#!/usr/bin/env bash
# Regenerates the alias table and the generated denylist (crates/airlock/src/policy/generated/)
# by walking the standard library and the ML packages the profiles cover
# (scripts/policy/walk_names.py; docs/policy.md says how they are used).
#
#   AIRLOCK_VENV=/path/to/venv scripts/policy/gen-names.sh   # reuse a virtualenv
#   scripts/policy/gen-names.sh                              # make target/names-venv
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${AIRLOCK_VENV:-$root/target/names-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    # The versions the committed tables were generated from (Python 3.11).
    "$venv/bin/pip" install --quiet torch==2.15.0 numpy==2.4.6 scikit-learn==1.9.1 \
        joblib==1.6.0 scipy==1.17.1 safetensors==0.8.0 pandas==3.1.2 dill==0.4.1 \
        omegaconf==2.4.0 lightgbm==4.7.0 xgboost-cpu==3.2.0 catboost==1.2.10 \
        statsmodels==0.15.0 gensim==4.4.0 PyYAML==6.0.4
fi
py="$venv/bin/python"
out="$root/crates/airlock/src/policy/generated"
"$py" "$root/scripts/policy/walk_names.py" aliases "$out/aliases.tsv"
"$py" "$root/scripts/policy/walk_names.py" dangerous "$out/dangerous.tsv"
