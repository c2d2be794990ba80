# shellcheck shell=bash
# Shared by scripts/diagnose and scripts/test: one virtual environment made from this repository's
# own requirement files, on a machine that has only Python 3 and pip (and apt, used only if needed).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MEMFRAG_VENV:-$REPO/.venv}"

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

# ensure_venv REQUIREMENTS_FILE: create $VENV and install the file's requirements, once per content.
ensure_venv() {
  local req="$1" python stamp want
  python="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      # Debian's system Python splits venv out; install it when we may.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -q python3-venv >/dev/null
        rm -rf "$VENV"
        "$python" -m venv "$VENV"
      else
        echo "cannot create a virtual environment: install python3-venv" >&2
        return 1
      fi
    fi
  fi
  stamp="$VENV/.memfrag-$(basename "$req")"
  want="$(cat "$REPO/requirements.txt" "$req" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing $(basename "$req") into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -r "$req"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
