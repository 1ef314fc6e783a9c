# Sourced by the scripts: makes .venv (Python 3.11) and installs the project into it when its
# dependencies changed. Usage: ensure_venv [EXTRAS]
ensure_venv() {
  local extras="${1:-}" python="${PYTHON:-python3.11}" spec stamp want
  command -v "$python" >/dev/null 2>&1 || python=python3
  if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "histoturing needs Python 3.11 (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    return 1
  fi
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  spec="."; [ -n "$extras" ] && spec=".[$extras]"
  stamp=.venv/.histoturing-installed
  want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
  # No extras asked for: an install of these dependencies with extras (the tests') has them all.
  if [ ! -f "$stamp" ] || { ! grep -qxF "$want" "$stamp" && { [ -n "$extras" ] || ! grep -q "^$want" "$stamp"; }; }; then
    echo "Installing histoturing and its dependencies into .venv (torch takes a minute) ..."
    .venv/bin/python -m pip install --quiet --quiet --upgrade pip
    # -qq: setuptools' notes on editable installs are for packagers, not for someone starting the project.
    .venv/bin/python -m pip install --quiet --quiet -e "$spec"
    echo "$want" >> "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}
