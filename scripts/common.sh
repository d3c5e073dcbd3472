# Shared by scripts/run, scripts/test and scripts/lock. Source it; do not run it.
# Finds a Python 3.10 (Rasa 3.6 supports nothing newer), keeps .venv in step with requirements.lock
# and builds the offline Dutch spaCy pipeline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export RASA_TELEMETRY_ENABLED=false

log() { printf '\033[1m[gentinfo]\033[0m %s\n' "$*" >&2; }

is_py310() { "$@" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }

# Prints the command of a working Python 3.10 interpreter, or fails with advice.
find_python310() {
  local cand
  if [ -n "${GENTINFO_PYTHON:-}" ]; then
    is_py310 "$GENTINFO_PYTHON" && { echo "$GENTINFO_PYTHON"; return; }
    log "GENTINFO_PYTHON=$GENTINFO_PYTHON is not a working Python 3.10."; return 1
  fi
  for cand in python3.10 python3 python; do
    command -v "$cand" >/dev/null 2>&1 && is_py310 "$cand" && { command -v "$cand"; return; }
  done
  if command -v pyenv >/dev/null 2>&1; then
    for cand in "$(pyenv root)"/versions/3.10*/bin/python; do
      [ -x "$cand" ] && is_py310 "$cand" && { echo "$cand"; return; }
    done
  fi
  if command -v uv >/dev/null 2>&1 && cand="$(uv python find 3.10 2>/dev/null)"; then
    echo "$cand"; return
  fi
  log "No Python 3.10 found. Rasa 3.6 needs exactly Python 3.10."
  log "Install it (e.g. 'pyenv install 3.10', 'uv python install 3.10' or your OS package python3.10)"
  log "or point GENTINFO_PYTHON at a Python 3.10 interpreter, then run this command again."
  return 1
}

# Creates .venv and installs requirements.lock when it changed since the last install.
ensure_venv() {
  local stamp="$VENV/.lock-sha256" want
  want="$(sha256sum requirements.lock | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ] || ! is_py310 "$VENV/bin/python"; then
    local py; py="$(find_python310)"
    log "Creating .venv with $py"
    rm -rf "$VENV"; "$py" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "Installing pinned requirements (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r requirements.lock
    "$VENV/bin/python" -m pip check
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
  python -m bot.nlp.build_pipeline --if-missing
}
