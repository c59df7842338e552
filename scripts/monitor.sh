#!/usr/bin/env bash
# `make monitor`: a Prometheus for the SafeServe of this checkout (`make run` in another terminal), in the
# foreground on http://127.0.0.1:9090 (PROMETHEUS_PORT overrides the port); Ctrl-C stops it. It scrapes every
# node in Ray's service-discovery file and evaluates monitoring/prometheus/alerts.rules.yml. Its config and data
# live in $SAFESERVE_HOME/prometheus. monitoring/monitoring.md explains what to look at.
#
#   scripts/monitor.sh --render-only DIR [SD_FILE] [INTERVAL]
# only writes DIR/prometheus.yml and DIR/alerts.rules.yml: SD_FILE is Ray's service-discovery file (default:
# this checkout's, $RAY_TMPDIR/ray/prom_metrics_service_discovery.json), INTERVAL (e.g. 2s) replaces the
# scrape, evaluation and file refresh intervals. Tests use it to run their own Prometheus on the same config.
set -euo pipefail
cd "$(dirname "$0")/.."

template=monitoring/prometheus/prometheus.yml
rules=monitoring/prometheus/alerts.rules.yml
template_sd=/tmp/ray/prom_metrics_service_discovery.json

render() {
  local dir="$1" sd_file="$2" interval="${3:-}"
  if [ -n "$interval" ] && ! [[ "$interval" =~ ^[0-9]+(ms|s|m|h)$ ]]; then
    echo "monitor.sh: INTERVAL must be a Prometheus duration such as 2s, not '$interval'" >&2
    return 2
  fi
  mkdir -p "$dir"
  local sd_escaped
  sd_escaped="$(printf '%s' "$sd_file" | sed 's/[&|\\]/\\&/g')"
  local edits=(-e "s|$template_sd|$sd_escaped|")
  if [ -n "$interval" ]; then
    edits+=(-e "s/^\(  scrape_interval:\) 15s$/\1 $interval/" -e "s/^\(  evaluation_interval:\) 15s$/\1 $interval/"
      -e "s/^\(  *refresh_interval:\) 30s$/\1 $interval/")
  fi
  {
    echo "# Rendered by scripts/monitor.sh from $template: edit that file, not this one."
    sed "${edits[@]}" "$template"
  } > "$dir/prometheus.yml"
  cp "$rules" "$dir/alerts.rules.yml"
  # Fail loudly if the template changed so that a replacement no longer applies.
  grep -qF -- "- $sd_file" "$dir/prometheus.yml" || { echo "monitor.sh: SD path not rendered" >&2; return 1; }
  if [ -n "$interval" ] && [ "$(grep -cE "^ +(scrape|evaluation|refresh)_interval: $interval$" "$dir/prometheus.yml")" -ne 3 ]; then
    echo "monitor.sh: intervals not rendered" >&2
    return 1
  fi
}

if [ "${1:-}" = "--render-only" ]; then
  [ $# -ge 2 ] && [ $# -le 4 ] || { echo "usage: $0 --render-only DIR [SD_FILE] [INTERVAL]" >&2; exit 2; }
  sd_file="${3:-}"
  if [ -z "$sd_file" ]; then
    source scripts/env.sh
    sd_file="$RAY_TMPDIR/ray/prom_metrics_service_discovery.json"
  fi
  render "$2" "$sd_file" "${4:-}"
  exit 0
fi

scripts/system_deps.sh --monitoring
source scripts/env.sh
sd_file="$RAY_TMPDIR/ray/prom_metrics_service_discovery.json"
dir="$SAFESERVE_HOME/prometheus"
port="${PROMETHEUS_PORT:-9090}"
render "$dir" "$sd_file"

if [ ! -e "$sd_file" ]; then
  echo "note: $sd_file does not exist yet; Ray's dashboard writes it once SafeServe runs (make run)"
fi
cat <<EOF
Prometheus on http://127.0.0.1:$port (config and data in $dir)
  alerts:   http://127.0.0.1:$port/alerts          (API: curl -s http://127.0.0.1:$port/api/v1/alerts)
  targets:  http://127.0.0.1:$port/targets         (Ray's metrics endpoints, from $sd_file)
  queries:  http://127.0.0.1:$port/graph           e.g. sum by (decision) (rate(ray_safeserve_requests_total[5m]))
  Grafana:  import monitoring/grafana/dashboards/safeserve-overview.json (see monitoring/monitoring.md)
EOF
exec prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$port"
