# Sourced: start_local_registry DIR starts Debian's docker-registry on a free port of 127.0.0.1
# with its storage in DIR, waits until it answers, and sets `registry` (host:port) and
# `registry_pid`. The caller stops it (kill "$registry_pid").
start_local_registry() {
  local dir=$1 port
  mkdir -p "$dir/storage"
  command -v docker-registry >/dev/null || { echo "error: docker-registry not found. Fix: make tools-images (apt-get install docker-registry)" >&2; return 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  local _
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    kill -0 "$registry_pid" 2>/dev/null || { echo "the registry did not start:" >&2; cat "$dir/registry.log" >&2; return 1; }
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || { echo "the registry did not answer in 30 s" >&2; return 1; }
  registry="127.0.0.1:$port"
}
