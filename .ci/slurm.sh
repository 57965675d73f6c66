#!/usr/bin/env bash
# A one-node Slurm cluster for the sweep tests, as root and without systemd.
#
#   .ci/slurm.sh up DIR     # config, state and logs under DIR; prints SLURM_CONF=...
#   .ci/slurm.sh down DIR   # stops the daemons it started, by their PIDs
#
# Needs Debian's slurm-wlm and munge. The packaged /etc/munge/munge.key is
# kept; munged runs as the munge user. Slurm runs jobs as root with
# proctrack/linuxproc and task/none (no cgroups needed), no accounting
# database (job states come from squeue and scontrol), one node described by
# `slurmd -C`. Ports default to 16817/16818 so that a machine's own cluster,
# if any, is left alone (SLURM_TEST_PORT=N uses N and N+1).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 up|down DIR" >&2
  exit 2
fi

stop() {
  local f pid
  for f in "$dir"/slurmd.pid.own "$dir"/slurmctld.pid.own "$dir"/munged.pid.own; do
    [[ -f "$f" ]] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

if [[ "$cmd" == down ]]; then
  stop
  exit 0
fi
[[ "$cmd" == up ]] || { echo "$0: unknown command \"$cmd\": expected up or down" >&2; exit 2; }

for b in munged slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null 2>&1 || [[ -x "/usr/sbin/$b" ]] || { echo "$0: $b not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
dir=$(cd "$dir" && pwd)

# 1. munge: reuse a running daemon, else start one as the munge user.
if ! munge -n </dev/null >/dev/null 2>&1; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 755 /run/munge
  chmod 400 /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$dir/munged.pid.own" 2>/dev/null || true
fi

# 2. slurm.conf: one node, as slurmd sees this machine.
port=${SLURM_TEST_PORT:-16817}
node=$(/usr/sbin/slurmd -C | head -1)
host=$(echo "$node" | sed -nE 's/^NodeName=([^ ]+).*/\1/p')
cat >"$dir/slurm.conf" <<EOF
ClusterName=sweeptest
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${port}
SlurmdPort=$((port + 1))
AuthType=auth/munge
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${dir}/log/jobcomp.txt
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=3600
${node% UpTime=*}
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

# 3. The daemons, in the foreground of background shells, so that their PIDs are ours.
/usr/sbin/slurmctld -D -f "$SLURM_CONF" </dev/null >"$dir/log/slurmctld.out" 2>&1 &
echo $! >"$dir/slurmctld.pid.own"
/usr/sbin/slurmd -D -f "$SLURM_CONF" </dev/null >"$dir/log/slurmd.out" 2>&1 &
echo $! >"$dir/slurmd.pid.own"

for _ in $(seq 300); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qx idle; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.1
done
echo "$0: the node did not become idle in 30 s; logs in $dir/log" >&2
tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
stop
exit 1
