# Shared by scripts/test and scripts/demo: install what lifeboat's tests and drills need, idempotently.
# Sourced, not run. Everything it installs is named here; nothing else is assumed on the machine.

LIFEBOAT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/lifeboat-target}
export LIFEBOAT_TOOLS_VENV=${LIFEBOAT_TOOLS_VENV:-$HOME/.cache/lifeboat-tools}

say() { printf '==> %s\n' "$*" >&2; }

# Debian packages: MariaDB for the databases, HAProxy as the local front door, iproute2 and nftables for
# the partition drill. apt never starts the services here; lifeboat and the tests start their own.
ensure_debian_packages() {
  local wanted=(mariadb-server mariadb-client haproxy iproute2 nftables curl) missing=() p
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# A virtualenv outside the clone, so it survives between runs; reinstalled when the requirements change.
ensure_tools_venv() {
  local req="$LIFEBOAT_ROOT/scripts/requirements-tools.txt" stamp="$LIFEBOAT_TOOLS_VENV/.requirements"
  if [ -x "$LIFEBOAT_TOOLS_VENV/bin/moto_server" ] && [ -x "$LIFEBOAT_TOOLS_VENV/bin/cfn-lint" ] \
     && [ -x "$LIFEBOAT_TOOLS_VENV/bin/schemathesis" ] \
     && cmp -s "$req" "$stamp"; then
    return
  fi
  say "installing moto, cfn-lint, zig and schemathesis into $LIFEBOAT_TOOLS_VENV"
  python3 -m venv "$LIFEBOAT_TOOLS_VENV"
  "$LIFEBOAT_TOOLS_VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for_http() { # url seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1 after $2 s" >&2
  return 1
}

# moto_server on a free loopback port; sets LIFEBOAT_TEST_AWS_ENDPOINT and MOTO_PID.
start_moto() {
  local port; port=$(free_port)
  "$LIFEBOAT_TOOLS_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$1/moto.log" 2>&1 &
  MOTO_PID=$!
  export LIFEBOAT_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
  wait_for_http "$LIFEBOAT_TEST_AWS_ENDPOINT/moto-api/" 30
  # Lambda invoke without Docker: moto echoes the payload instead of running code (see the notes on moto).
  curl -fsS -X POST -H 'Content-Type: application/json' -d '{"lambda":{"use_docker":false}}' \
    "$LIFEBOAT_TEST_AWS_ENDPOINT/moto-api/config" >/dev/null
  say "moto on $LIFEBOAT_TEST_AWS_ENDPOINT"
}

# A throwaway MariaDB for the storefront tests; sets LIFEBOAT_TEST_MYSQL_URL and MARIADB_PID.
start_mariadb() {
  local dir="$1/mariadb" port; port=$(free_port)
  mkdir -p "$dir/data"
  # mariadbd drops to the mysql user, which must be able to reach its files (mktemp makes 0700 folders).
  chmod 755 "$1"
  chown -R mysql:mysql "$dir" 2>/dev/null || true
  cat >"$dir/my.cnf" <<CNF
[mariadbd]
port=$port
bind-address=127.0.0.1
socket=$dir/mysqld.sock
datadir=$dir/data
pid-file=$dir/mysqld.pid
log-error=$dir/error.log
server-id=1
skip-name-resolve
innodb-buffer-pool-size=128M
performance-schema=OFF
max-connections=500
user=mysql
CNF
  mariadb-install-db --defaults-file="$dir/my.cnf" --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
  mariadbd --defaults-file="$dir/my.cnf" >/dev/null 2>&1 &
  MARIADB_PID=$!
  local i
  for ((i = 0; i < 300; i++)); do
    mariadb --socket="$dir/mysqld.sock" -uroot -e 'select 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ((i == 300)); then
    echo "MariaDB did not start; its log:" >&2
    cat "$dir/error.log" >&2
    return 1
  fi
  mariadb --socket="$dir/mysqld.sock" -uroot -e "CREATE USER IF NOT EXISTS 'lifeboat'@'127.0.0.1' IDENTIFIED BY 'lifeboat'; GRANT ALL ON *.* TO 'lifeboat'@'127.0.0.1' WITH GRANT OPTION;"
  export LIFEBOAT_TEST_MYSQL_URL="mysql://lifeboat:lifeboat@127.0.0.1:$port"
  say "MariaDB on 127.0.0.1:$port"
}
