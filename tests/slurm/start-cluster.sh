#!/usr/bin/env bash
# difftui's one-node Slurm cluster for the tests (as root): installs Debian's slurmctld, slurmd, slurm-client and
# munge when they are missing, renders tests/slurm/slurm.conf.in, and starts munged, slurmctld and slurmd.
#
#   tests/slurm/start-cluster.sh [start]   start (or reuse) it; prints the path of its slurm.conf (export SLURM_CONF=)
#   tests/slurm/start-cluster.sh stop      stop the daemons it started (by the pids in its folder)
#
# DIFFTUI_SLURM_DIR (default /tmp/difftui-slurm) holds its state, logs and pid files; DIFFTUI_SLURM_PORT (default
# 6817) is slurmctld's port and the next one slurmd's, so a second cluster can run beside another one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${DIFFTUI_SLURM_DIR:-/tmp/difftui-slurm}
port=${DIFFTUI_SLURM_PORT:-6817}
conf=$dir/slurm.conf
action=${1:-start}

stop_daemon() {                                     # by the pid its own pid file names; never by name
  local pidfile=$dir/$1.pid
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

if [ "$action" = stop ]; then
  export SLURM_CONF=$conf
  if [ -f "$conf" ] && command -v scancel >/dev/null; then scancel --full --quiet --user="$(id -un)" 2>/dev/null || true; fi
  stop_daemon slurmd
  stop_daemon slurmctld
  exit 0
fi
[ "$action" = start ] || { echo "usage: $0 [start|stop]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: run it as root (SlurmUser root)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
   || ! command -v munged >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge) >&2
fi

mkdir -p "$dir"/{state,spool,log}
host=$(hostname -s)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$dir|g" -e "s|@CPUS@|$(nproc)|g" -e "s|@MEM_MB@|$mem_mb|g" \
    -e "s|@CTLD_PORT@|$port|g" -e "s|@SLURMD_PORT@|$((port + 1))|g" "$here/slurm.conf.in" > "$conf.tmp"
mv "$conf.tmp" "$conf"

# munge: one key and one daemon for the machine (shared with any other cluster on it).
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
[ -f /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- munged
fi

export SLURM_CONF=$conf
alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }
alive slurmctld || slurmctld -f "$conf"
alive slurmd || slurmd -f "$conf"
for _ in $(seq 1 60); do                            # the node registers and becomes idle (or mixed / allocated)
  if sinfo --noheader --format=%t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "$conf"
    exit 0
  fi
  sleep 0.5
done
echo "$0: the cluster did not come up (see $dir/log/)" >&2
exit 1
