# Shared shell helpers of scripts/test and scripts/demo (sourced, not run).

step() { printf '\n==> %s\n' "$*" >&2; }

# need_packages pkg:command ... — installs the Debian packages whose command is missing (root only).
need_packages() {
  local missing=() pair pkg cmd
  for pair in "$@"; do
    pkg=${pair%%:*}; cmd=${pair#*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "$cmd" ]; then missing+=("$pkg"); fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# free_port — prints a TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
