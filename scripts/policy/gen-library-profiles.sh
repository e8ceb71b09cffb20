#!/usr/bin/env bash
# Regenerates the per-library allowlist profiles (pandas, xgboost, lightgbm, catboost, omegaconf,
# statsmodels, gensim, dill, pillow, numpy-ufuncs) and their benign fixtures, from the libraries
# themselves (scripts/policy/gen_library_profiles.py).
#
#   AIRLOCK_VENV=/path/to/venv scripts/policy/gen-library-profiles.sh   # reuse a virtualenv
#   scripts/policy/gen-library-profiles.sh                              # make target/libs-venv
# The committed outputs were made with bench/benign's virtualenv (same pinned versions).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${AIRLOCK_VENV:-$root/target/libs-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    # The versions the committed profiles and fixtures were made with (Python 3.11).
    "$venv/bin/pip" install --quiet numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 joblib==1.6.0 \
        pandas==3.1.2 dill==0.4.1 omegaconf==2.4.0 lightgbm==4.7.0 xgboost-cpu==3.2.0 \
        catboost==1.2.10 statsmodels==0.15.0 gensim==4.4.0 torch==2.15.0 \
        pillow==13.0.0 pyarrow==26.0.1
fi
py="$venv/bin/python"
"$py" "$root/scripts/policy/gen_library_profiles.py" profiles "$root/crates/airlock/src/policy/profiles"
"$py" "$root/scripts/policy/gen_library_profiles.py" fixtures "$root/tests/fixtures/benign-libs"
