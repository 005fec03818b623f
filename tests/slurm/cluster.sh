#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the tests (Debian's slurm-wlm and munge).
#
#   cluster.sh install        apt-get install the daemons and clients (root; about 10 s)
#   cluster.sh start DIR      munged + slurmctld + slurmd on localhost, all state under DIR;
#                             returns once `sinfo` shows the node idle; prints the env to source
#   cluster.sh stop DIR       stops exactly the daemons `start` started (by their PIDs), in reverse
#
# Choices (see ../shared/notes/slurm-on-one-machine.md for what was measured):
# - job status: no accounting database, so Snakemake polls `squeue`; MinJobAge=300 keeps finished
#   jobs visible to it (the plugin's default sacct query would hang silently without accounting).
# - the slurm executor's job step clears SLURM_CONF, so DIR/bin/srun wraps srun and exports it;
#   DIR/bin goes first on PATH. Nothing is written outside DIR.
# - CPU-only node: GPU requests (gpu=1 / gres=gpu:1) are served by fake GPUs declared as GRES, one
#   per character device (File=/dev/null, /dev/zero, ...), so the profile's real GPU requests are
#   exercised unchanged. A running job holds two of them here (its batch step and its srun step are
#   both counted), so six devices let three jobs run at once.
set -euo pipefail

command=${1:?usage: cluster.sh install|start DIR|stop DIR}

install() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        echo "slurm and munge are installed"; return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    echo "installed: $(slurmctld -V), munge $(munged -V 2>&1 | head -1)"
}

start() {
    local dir; dir=$(realpath -m "${1:?state directory}")
    local host; host=$(hostname -s)
    mkdir -p "$dir"/{munge,state,spool,log,bin}
    chmod 755 "$dir" "$dir/munge"  # munged refuses a socket directory that others cannot enter
    rm -rf "$dir/state"/*          # a drained node state would survive in StateSaveLocation
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge.key"
    local devices=() gpus
    for device in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; do
        [ -c "$device" ] && devices+=("$device")
    done
    gpus=${#devices[@]}
    munged --key-file="$dir/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge.seed" --force
    cat > "$dir/slurm.conf" <<CONF
ClusterName=introspect-test
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$host CPUs=4 RealMemory=12000 Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    : > "$dir/gres.conf"
    for device in "${devices[@]}"; do
        echo "NodeName=$host Name=gpu File=$device" >> "$dir/gres.conf"
    done
    cat > "$dir/bin/srun" <<WRAP
#!/bin/sh
export SLURM_CONF=$dir/slurm.conf
exec $(command -v srun) "\$@"
WRAP
    chmod +x "$dir/bin/srun"
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -D -i -f "$dir/slurm.conf" >"$dir/log/slurmctld.out" 2>&1 &
    echo $! > "$dir/slurmctld.daemon.pid"
    slurmd -D -f "$dir/slurm.conf" >"$dir/log/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.daemon.pid"
    for _ in $(seq 1 200); do
        if [ "$(sinfo -h -o %t 2>/dev/null)" = "idle" ]; then
            echo "export SLURM_CONF=$dir/slurm.conf PATH=$dir/bin:\$PATH"
            return 0
        fi
        sleep 0.1
    done
    echo "SLURM did not become idle; node state: $(sinfo -h -o '%t %E' 2>&1)" >&2
    tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop "$dir"
    return 1
}

stop() {
    local dir; dir=$(realpath -m "${1:?state directory}")
    for pidfile in slurmd.daemon.pid slurmctld.daemon.pid munged.pid; do
        if [ -f "$dir/$pidfile" ]; then
            local pid; pid=$(cat "$dir/$pidfile")
            if kill "$pid" 2>/dev/null; then
                for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true
            fi
            rm -f "$dir/$pidfile"
        fi
    done
}

case "$command" in
    install) install ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    *) echo "unknown command $command" >&2; exit 2 ;;
esac
