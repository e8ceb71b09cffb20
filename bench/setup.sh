#!/usr/bin/env bash
# Install what the benchmark needs (idempotent). Two virtualenvs under bench/.venv/ (gitignored):
#   bench/.venv/peers  the peer scanners from PyPI, alone, as a user would install them:
#                      picklescan, modelscan, fickling, modelaudit (whatever versions install)
#   bench/.venv/data   torch, numpy, scikit-learn, joblib, safetensors (+ gguf, onnx, h5py, keras
#                      for formats/): makes the corpus and
#                      runs the Hub-style conversion baseline. If AIRLOCK_VENV points at an
#                      existing virtualenv that already has them, bench/.venv/data is a symlink
#                      to it (saves a multi-GB torch download).
# Also GNU time (apt) for wall/peak-RSS measurements. Writes the installed versions to
# bench/out/versions.txt and checks that every peer CLI starts.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"
mkdir -p "$VENV" "$HERE/out"

if [[ ! -x /usr/bin/time ]]; then
  echo "== installing GNU time"
  apt-get update -qq && apt-get install -y -qq time
fi

echo "== peers virtualenv: $VENV/peers"
if [[ ! -x "$VENV/peers/bin/python" ]]; then
  "$PY" -m venv "$VENV/peers"
fi
"$VENV/peers/bin/pip" install -q --upgrade picklescan modelscan fickling modelaudit

DATA_PKGS=(torch numpy scikit-learn joblib safetensors)
has_data_pkgs() { "$1" -c 'import torch, numpy, sklearn, joblib, safetensors' 2>/dev/null; }

echo "== data virtualenv: $VENV/data"
if [[ -n "${AIRLOCK_VENV:-}" ]] && has_data_pkgs "$AIRLOCK_VENV/bin/python"; then
  if [[ ! -e "$VENV/data" ]]; then
    ln -s "$(cd "$AIRLOCK_VENV" && pwd)" "$VENV/data"
  fi
  echo "   using AIRLOCK_VENV=$AIRLOCK_VENV"
else
  if [[ ! -x "$VENV/data/bin/python" ]]; then
    "$PY" -m venv "$VENV/data"
  fi
  has_data_pkgs "$VENV/data/bin/python" || "$VENV/data/bin/pip" install -q "${DATA_PKGS[@]}"
fi

# formats/ (make_data.py --formats) also needs these; installed into a virtualenv this script
# made, only suggested for one given through AIRLOCK_VENV.
FORMATS_PKGS=(gguf onnx h5py keras)
if ! "$VENV/data/bin/python" -c 'import gguf, onnx, h5py, keras' 2>/dev/null; then
  if [[ -L "$VENV/data" ]]; then
    echo "   for formats/: $VENV/data/bin/pip install ${FORMATS_PKGS[*]}"
  else
    "$VENV/data/bin/pip" install -q "${FORMATS_PKGS[@]}"
  fi
fi

echo "== checking the peer CLIs start"
export NO_ANALYTICS=1 PROMPTFOO_DISABLE_TELEMETRY=1 CI=1
for cli in picklescan modelscan fickling modelaudit; do
  if "$VENV/peers/bin/$cli" --help >/dev/null 2>&1; then
    echo "   $cli --help: ok"
  else
    echo "   $cli --help: FAILED" >&2
    exit 1
  fi
done

{
  echo "# installed $(date -u +%Y-%m-%dT%H:%MZ)"
  "$VENV/peers/bin/pip" list 2>/dev/null | grep -iE '^(picklescan|modelscan|fickling|modelaudit) '
  "$VENV/data/bin/python" -c 'import torch, numpy, sklearn, joblib, safetensors as s; print("torch", torch.__version__); print("numpy", numpy.__version__); print("scikit-learn", sklearn.__version__); print("joblib", joblib.__version__); print("safetensors", s.__version__)'
} | tee "$HERE/out/versions.txt"
echo "== done. Next: $VENV/data/bin/python $HERE/make_data.py && $HERE/run.sh [AIRLOCK_BIN]"
