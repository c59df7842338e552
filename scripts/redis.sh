# Sourced: start_redis starts redis-server on loopback with AOF persistence in $SAFESERVE_HOME/redis, unless
# one already answers on the port (then it is reused and left running). stop_redis stops only what we started.
started_redis_pid=""

start_redis() {
  local dir="$SAFESERVE_HOME/redis"
  mkdir -p "$dir"
  if redis-cli -p "$SAFESERVE_REDIS_PORT" ping >/dev/null 2>&1; then
    echo "reusing the Redis already running on 127.0.0.1:$SAFESERVE_REDIS_PORT"
    return
  fi
  redis-server --bind 127.0.0.1 --port "$SAFESERVE_REDIS_PORT" --dir "$dir" \
    --appendonly yes --appendfsync everysec --save "" --protected-mode yes \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$SAFESERVE_REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  started_redis_pid="$(cat "$dir/redis.pid")"
  echo "Redis on 127.0.0.1:$SAFESERVE_REDIS_PORT (AOF in $dir)"
}

stop_redis() {
  [ -n "$started_redis_pid" ] || return 0
  redis-cli -p "$SAFESERVE_REDIS_PORT" shutdown >/dev/null 2>&1 || kill "$started_redis_pid" 2>/dev/null || true
  started_redis_pid=""
}
