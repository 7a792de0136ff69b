#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by tests/slurm/start_slurm.sh: slurmd, slurmctld
# and munged, each by the pid in its pid file under $TXMORPH_SLURM_DIR (a munged that the start
# script found already running has no pid file there and is left alone). Safe to call twice.
set -euo pipefail

STATE=${TXMORPH_SLURM_DIR:-/var/tmp/txmorph-slurm}

stop() {  # stop NAME PIDFILE
    local name=$1 pidfile=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    # Only a live process of that name: a stale pid file may name a reused pid.
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
        echo "stop_slurm: stopping $name (pid $pid)" >&2
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop_slurm: $name (pid $pid) ignores SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

stop slurmd "$STATE/slurmd.pid"
stop slurmctld "$STATE/slurmctld.pid"
stop munged "$STATE/munge/munged.pid"
