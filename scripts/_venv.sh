# Sourced by the other scripts: make .venv with the project installed in editable mode.
# Needs only Python 3.10+ with pip and venv. Set PYTHON to pick the interpreter.
set -euo pipefail

# pip, quiet, minus the notices about unreachable extra index locations some machines configure.
pip_quiet() {
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v '^WARNING: Location' >&2)
}

PYTHON="${PYTHON:-python3}"
VENV=".venv"

if ! "$PYTHON" -c 'import sys; raise SystemExit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "otel-impact needs Python 3.10 or newer; set PYTHON to one (found: $("$PYTHON" --version 2>&1))." >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV ..." >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$(cat pyproject.toml constraints.txt | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ "$(cat "$VENV/.installed" 2>/dev/null || true)" != "$stamp" ]; then
  echo "Installing otel-impact[processor,dev] into $VENV ..." >&2
  pip_quiet -e ".[processor,dev]" -c constraints.txt --config-settings editable_mode=strict
  echo "$stamp" > "$VENV/.installed"
else
  # Refresh the editable link tree so files added since the last install are importable.
  pip_quiet --no-deps --no-build-isolation -e . --config-settings editable_mode=strict
fi
