# shellcheck shell=bash
# Shared by scripts/diagnose and scripts/test: one virtual environment made from this repository's
# own requirement files, on a machine that has only Python 3 and pip (and apt, used only if needed).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMFRAG_VENV:-$REPO/.venv}"
# The oldest ansible-core the collection supports (2.16) gets its own environment beside the main one, made
# from requirements-2.16.txt; scripts/test runs the unit and end-to-end tests in it once more.
export VENV_216="${MEMFRAG_VENV_216:-$VENV-2.16}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "no python3 found; install Python 3.11" >&2
  return 1
}

# make_venv DIR REQUIREMENTS_FILE: create DIR and install the file's requirements, once per content.
make_venv() {
  local dir="$1" req="$2" python stamp want
  python="$(find_python)"
  if [ ! -x "$dir/bin/python" ]; then
    log "creating virtual environment $dir"
    if ! "$python" -m venv "$dir" 2>/dev/null; then
      # Debian's system Python splits venv out; install it when we may.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -q python3-venv >/dev/null
        rm -rf "$dir"
        "$python" -m venv "$dir"
      else
        echo "cannot create a virtual environment: install python3-venv" >&2
        return 1
      fi
    fi
  fi
  stamp="$dir/.memfrag-$(basename "$req")"
  want="$(cat "$REPO/requirements.txt" "$req" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing $(basename "$req") into $dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$dir/bin/python" -m pip install -q -r "$req"
    echo "$want" > "$stamp"
  fi
}

# ensure_venv REQUIREMENTS_FILE: make_venv for $VENV, which then comes first on PATH.
ensure_venv() {
  make_venv "$VENV" "$1"
  export PATH="$VENV/bin:$PATH"
}
