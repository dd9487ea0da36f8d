#!/usr/bin/env bash
# start.sh: starts a single-node Slurm on localhost (munge + slurmctld + slurmd, Debian's slurm-wlm)
# for running sweeps as job arrays in tests and CI. Needs root; no systemd, no cgroups.
# Usage: scripts/slurm/start.sh STATE_DIR   then   export SLURM_CONF=STATE_DIR/slurm.conf
# Each instance has its own munged socket and ports, so parallel instances do not interfere.
# Stop it with scripts/slurm/stop.sh STATE_DIR (stops only the daemons this script started).
set -euo pipefail
STATE=${1:?usage: start.sh STATE_DIR}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
for b in munge unmunge munged mungekey slurmctld slurmd sinfo sbatch squeue scontrol runuser; do
  command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
  command -v "$b" >/dev/null 2>&1 || { echo "start.sh: '$b' not found; install slurm-wlm and munge (scripts/install-deps.sh)" >&2; exit 1; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
trap 'rc=$?; if [ $rc -ne 0 ]; then "$HERE/stop.sh" "$STATE"; fi' EXIT  # a failed start leaves no daemons
[ "$(id -u)" -eq 0 ] || { echo "start.sh: must run as root (slurmd runs jobs as SlurmUser=root)" >&2; exit 1; }

# Our own munged on a socket in STATE_DIR (recipe: /work/shared/design/tooling-notes.md), so that
# several instances (parallel test runs) never share or stop each other's daemons.
if [ ! -s /etc/munge/munge.key ]; then mungekey --create --keyfile=/etc/munge/munge.key; fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p "$STATE/munge"
chown munge:munge "$STATE/munge" && chmod 755 "$STATE/munge"
SOCK=$STATE/munge/munge.socket
runuser -u munge -- "$(command -v munged)" --socket="$SOCK" --pid-file="$STATE/munge/munged.pid" \
  --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed"
for _ in $(seq 100); do [ -s "$STATE/munge/munged.pid" ] && munge -S "$SOCK" -n 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1 && break; sleep 0.1; done
munge -S "$SOCK" -n | unmunge -S "$SOCK" >/dev/null || { echo "start.sh: munged does not answer; log:" >&2; cat "$STATE/munge/munged.log" >&2; exit 1; }

# Two free TCP ports for slurmctld and slurmd (probe from a per-process start).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
P=$((20000 + $$ % 20000))
while ! port_free "$P" || ! port_free $((P + 1)); do P=$((P + 2)); done

CPUS=$(nproc)
MEM=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # below what slurmd detects
mkdir -p "$STATE/spool" "$STATE/state" "$STATE/log"
cat > "$STATE/slurm.conf" <<CONF
# Single-node Slurm on localhost written by scripts/slurm/start.sh
ClusterName=lpusim-local
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
SlurmctldPort=$P
SlurmdPort=$((P + 1))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$STATE/slurm.conf

setsid slurmctld -D -c -f "$SLURM_CONF" </dev/null >"$STATE/log/slurmctld.out" 2>&1 &
echo $! > "$STATE/slurmctld.pid"
setsid slurmd -D -N localhost -f "$SLURM_CONF" </dev/null >"$STATE/log/slurmd.out" 2>&1 &
echo $! > "$STATE/slurmd.pid"

# Wait (up to 60 s) for the node to be idle.
for i in $(seq 600); do
  st=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
  case "$st" in
    idle) echo "start.sh: single-node Slurm is up (SLURM_CONF=$SLURM_CONF)"; exit 0 ;;
    down*|drain*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
  esac
  if ! kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null || ! kill -0 "$(cat "$STATE/slurmd.pid")" 2>/dev/null; then
    echo "start.sh: a Slurm daemon exited; logs in $STATE/log:" >&2
    tail -n 20 "$STATE"/log/*.out "$STATE"/log/*.log >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
echo "start.sh: the node did not become idle within 60 s (state '$st'); logs in $STATE/log" >&2
tail -n 20 "$STATE"/log/*.log >&2 2>/dev/null || true
exit 1
