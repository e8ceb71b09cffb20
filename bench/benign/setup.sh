#!/usr/bin/env bash
# Create bench/benign/.venv, the throwaway virtualenv that makes the benign set (issue 21).
#
#   BASE_VENV=/path/to/venv-with-torch bench/benign/setup.sh    # BASE_VENV optional
#
# torch (and numpy, scipy, scikit-learn, joblib, safetensors, cloudpickle) are large: when
# BASE_VENV already has them, a .pth file puts its site-packages at the END of this venv's path,
# so pip sees them as installed and does not download them again; anything this venv installs
# itself comes first. Without BASE_VENV, pip installs everything from requirements.txt (a few GB
# with torch's CUDA wheels). Idempotent: re-running only installs what is missing.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [ ! -x "$HERE/.venv/bin/python" ]; then
    "$PY" -m venv "$HERE/.venv"
fi
if [ -n "${BASE_VENV:-}" ]; then
    base_site="$("$BASE_VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
    own_site="$("$HERE/.venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
    echo "$base_site" > "$own_site/zz_base_venv.pth"
fi
"$HERE/.venv/bin/pip" install --disable-pip-version-check -q -r "$HERE/requirements.txt"
"$HERE/.venv/bin/pip" freeze > "$HERE/.venv/freeze.txt"
echo "ready: $HERE/.venv/bin/python $HERE/make_benign.py"
