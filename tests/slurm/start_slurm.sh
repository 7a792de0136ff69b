#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this machine (for tests and trying the profile).
#
#   sudo tests/slurm/start_slurm.sh      # prints the node state; a second call is a no-op
#   sudo tests/slurm/stop_slurm.sh       # stops the daemons this script started
#
# What it does, as root on a throwaway Debian/Ubuntu machine (CI, a VM, a container):
#   - installs slurm-wlm and munge with apt-get, only if slurmctld/slurmd/munged are missing;
#   - creates /etc/munge/munge.key if missing and starts munged as user munge;
#   - writes /etc/slurm/slurm.conf (one node = this machine, one default partition, no
#     accounting, no cgroups) unless a slurm.conf not written by this script is already there;
#   - starts slurmctld, then slurmd, and waits until the node is idle.
# Daemon state, spool, logs and pid files live in $TXMORPH_SLURM_DIR (default
# /var/tmp/txmorph-slurm). Settings: TXMORPH_SLURM_PARTITION (default: debug).
#
# There is no job accounting (AccountingStorageType=accounting_storage/none), so `sacct` does
# not work: run Snakemake with `--slurm-status-command squeue --slurm-no-account`;
# MinJobAge=600 keeps finished jobs visible to squeue for 10 minutes.
set -euo pipefail

STATE=${TXMORPH_SLURM_DIR:-/var/tmp/txmorph-slurm}
PARTITION=${TXMORPH_SLURM_PARTITION:-debug}
CONF=/etc/slurm/slurm.conf
MARKER="# Written by txmorph tests/slurm/start_slurm.sh"

# Exit status: 0 running; 1 failed to start; 2 not root; 3 apt-get cannot install the
# packages; 4 a slurm.conf not written by this script exists (a real SLURM setup).
log() { echo "start_slurm: $*" >&2; }
die() { log "error: $2"; exit "$1"; }

alive() {  # alive PIDFILE NAME: the pid in PIDFILE is a running process called NAME
    [[ -s $1 ]] && [[ $(cat "/proc/$(cat "$1")/comm" 2>/dev/null) == "$2" ]]
}

node_idle() {
    sinfo --noheader --partition "$PARTITION" --format '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'
}

[[ $(id -u) -eq 0 ]] || die 2 "must run as root (it installs packages and starts system daemons)"

# --- already running? -------------------------------------------------------------------
if alive "$STATE/slurmctld.pid" slurmctld && alive "$STATE/slurmd.pid" slurmd; then
    log "already running (pids $(cat "$STATE/slurmctld.pid"), $(cat "$STATE/slurmd.pid")); nothing to do"
    sinfo
    exit 0
fi

# --- packages ----------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sinfo >/dev/null; then
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists yet; refresh them if the install cannot find them.
    apt-get install -y -q slurm-wlm munge >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; } \
        || die 3 "apt-get install slurm-wlm munge failed"
fi

mkdir -p "$STATE"/{ctld,spool,munge}
chmod 755 "$STATE"

# --- munge -------------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge "$STATE/munge"
chmod 755 /run/munge

if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already answers; using it"
else
    log "starting munged"
    rm -f "$STATE/munge/munged.pid"
    runuser -u munge -- munged --force --pid-file="$STATE/munge/munged.pid"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
    munge -n | unmunge >/dev/null || die 1 "munged does not answer; see /var/log/munge/munged.log"
fi

# --- slurm.conf --------------------------------------------------------------------------
if [[ -e $CONF ]] && ! head -n 1 "$CONF" | grep -qF "$MARKER"; then
    die 4 "$CONF exists and was not written by this script; not overwriting a real SLURM setup"
fi
HOST=$(hostname -s)
# slurmd reaches slurmctld by this name; where it does not resolve, use the loopback address.
ADDR=""
getent hosts "$HOST" >/dev/null || ADDR="127.0.0.1"
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
# Leave room for the OS; slurmd drains a node that has less memory than RealMemory.
REAL_MB=$(( MEM_MB > 4096 ? MEM_MB - 2048 : MEM_MB * 3 / 4 ))
mkdir -p /etc/slurm
cat >"$CONF" <<EOF
$MARKER for a single-node test cluster.
ClusterName=txmorph
SlurmctldHost=$HOST${ADDR:+($ADDR)}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
NodeName=$HOST${ADDR:+ NodeAddr=$ADDR} CPUs=$CPUS RealMemory=$REAL_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons -----------------------------------------------------------------------------
started=$(date +%s)
if ! alive "$STATE/slurmctld.pid" slurmctld; then
    log "starting slurmctld"
    slurmctld -i   # -i: ignore state left by an earlier run; daemonises, writes its pid file
fi
for _ in $(seq 50); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || die 1 "slurmctld does not answer; see $STATE/slurmctld.log"

if ! alive "$STATE/slurmd.pid" slurmd; then
    log "starting slurmd"
    slurmd
fi
for _ in $(seq 150); do node_idle && break; sleep 0.2; done
if ! node_idle; then
    # A node left DOWN/DRAINED by an earlier run of this script: bring it back.
    scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
    for _ in $(seq 50); do node_idle && break; sleep 0.2; done
fi
node_idle || { sinfo -R >&2; die 1 "node $HOST is not idle; see $STATE/slurmd.log"; }
log "SLURM is up in $(( $(date +%s) - started )) s: node $HOST ($CPUS CPUs, $REAL_MB MB), partition $PARTITION"
sinfo
