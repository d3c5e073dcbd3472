# Source after common.sh: makes sure the real services the tests talk to are up, installing them
# from Debian's packages on a fresh machine (CI runs as root).
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { log "apt-get not found: install $* yourself"; return 1; }
  [ -n "${_APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null; _APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_redis() {
  local url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
  python - "$url" <<'PY' && return 0
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()
PY
  command -v redis-server >/dev/null 2>&1 || { log "Installing redis-server"; apt_install redis-server; }
  log "Starting redis-server"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli ping >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "Redis did not start"; return 1
}

ensure_postgres() {
  local url="${TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
  pg_ok() { python - "$url" <<'PY'
import sys, psycopg2
psycopg2.connect(sys.argv[1], connect_timeout=3).close()
PY
  }
  pg_ok 2>/dev/null && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "Installing PostgreSQL"; apt_install postgresql
  fi
  log "Starting PostgreSQL"
  local version; version="$(ls /etc/postgresql | sort -V | tail -1)"
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # tests connect as postgres over TCP without a password, like on the project's machines
  grep -q "gentinfo-tests" "$hba" || sed -i "1i host all all 127.0.0.1/32 trust # gentinfo-tests" "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
  su postgres -c "psql -tAc \"select 1 from pg_database where datname='test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
  pg_ok
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  log "Installing Debian's chromium for the browser tests"; apt_install chromium
}
