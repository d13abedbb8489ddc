# A throw-away single-node SLURM cluster on this machine, for tests/slurm/run.sh.
# Source it, then `slurm_up DIR` (DIR: an empty directory of the caller's, holding every file
# the cluster writes) and `slurm_down` (stops only the daemons slurm_up started, by pid).
# Needs root and Debian's slurm-wlm and munge (slurm_install installs them when missing).
#
# Written for containers without systemd: the daemons are started directly, with a private
# munge socket and key, state and logs under DIR, ports away from SLURM's defaults (so that a
# real slurmd on the machine is not disturbed), no accounting, and no cgroup plugins
# (proctrack/linuxproc, task/none), which need a cgroup hierarchy a container rarely has.

SLURM_TEST_CTLD_PORT=${SLURM_TEST_CTLD_PORT:-16817}
SLURM_TEST_SLURMD_PORT=${SLURM_TEST_SLURMD_PORT:-16818}
_slurm_pids=()

slurm_install() {
  if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 &&
    command -v sbatch >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then
    return
  fi
  echo "installing slurm-wlm and munge"
  apt-get update -qq
  # The packages' maintainer scripts try to start the services; without an init system
  # policy-rc.d refuses, which is what we want (we start our own below).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

# Wait up to $2 seconds for the command $1 (a string run by bash) to succeed.
_slurm_wait_for() {
  local what=$1 secs=$2 i
  for ((i = 0; i < secs * 5; i++)); do
    if bash -c "$what" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

slurm_up() {
  local dir=$1
  mkdir -p "$dir"/{munge,state,spool,log}
  chmod 700 "$dir/munge"
  # munged refuses a key readable by others, and a socket directory writable by others.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed"
  _slurm_wait_for "test -s '$dir/munge/munged.pid'" 10 || { echo "munged did not start" >&2; cat "$dir/log/munged.log" >&2; return 1; }
  _slurm_pids+=("$(cat "$dir/munge/munged.pid")")

  # The node as slurmd sees it (CPUs, sockets, cores, threads, memory), so that slurmd
  # registers without a mismatch that would drain the node.
  local node
  node=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]*//')
  local host
  host=$(hostname -s)
  export SLURM_CONF=$dir/slurm.conf
  cat >"$SLURM_CONF" <<EOF
ClusterName=bagstream-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$SLURM_TEST_CTLD_PORT
SlurmdPort=$SLURM_TEST_SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Start a job as soon as it is eligible (the default backfill scheduler waits for its
# 30 s interval); keep finished jobs 5 minutes so that \`scontrol show job\` still sees them.
SchedulerType=sched/builtin
MinJobAge=300
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -f "$SLURM_CONF" -i
  _slurm_wait_for "test -s '$dir/slurmctld.pid'" 20 || { echo "slurmctld did not start" >&2; cat "$dir/log/slurmctld.log" >&2; return 1; }
  _slurm_pids+=("$(cat "$dir/slurmctld.pid")")
  slurmd -f "$SLURM_CONF"
  _slurm_wait_for "test -s '$dir/slurmd.pid'" 20 || { echo "slurmd did not start" >&2; cat "$dir/log/slurmd.log" >&2; return 1; }
  _slurm_pids+=("$(cat "$dir/slurmd.pid")")
  if ! _slurm_wait_for "sinfo -h -n '$host' -o %T | grep -qx idle" 60; then
    echo "the node did not become idle: $(sinfo -h -n "$host" -o '%T %E' 2>&1)" >&2
    tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2
    return 1
  fi
}

slurm_down() {
  local pid i
  # slurmd, slurmctld, then munged (the reverse of the start), each given 10 s to exit.
  for ((i = ${#_slurm_pids[@]} - 1; i >= 0; i--)); do
    pid=${_slurm_pids[i]}
    kill "$pid" 2>/dev/null || continue
    _slurm_wait_for "! kill -0 $pid" 10 || kill -9 "$pid" 2>/dev/null || true
  done
  _slurm_pids=()
}
