#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the tests (Debian's slurm-wlm and munge, which
# .ci/provision installs).
#
#   cluster.sh start DIR      munged, MariaDB + slurmdbd, slurmctld, slurmd on localhost, all state under DIR;
#                             returns once `sinfo` shows the node idle; prints the env to source
#   cluster.sh stop DIR       stops exactly the daemons `start` started (by their PIDs), in reverse
#
# Choices (see ../shared/notes/slurm-on-one-machine.md for what was measured):
# - job status: SLURM accounting (MariaDB + slurmdbd), so Snakemake's SLURM plugin queries `sacct`,
#   its default, exactly as on a real cluster.
# - the slurm executor's job step clears SLURM_CONF, so DIR/bin/srun wraps srun and exports it;
#   DIR/bin goes first on PATH. Nothing is written outside DIR.
# - DIR/bin/sbatch logs every submission's arguments (all but the --wrap'ed command, tab-separated,
#   one line per job, written whole under a lock) to DIR/log/sbatch.args, then runs the real sbatch: the
#   tests check what was asked.
# - CPU-only node: GPU requests (gpu=1 / gres=gpu:1) are served by fake GPUs declared as GRES, one
#   per character device (File=/dev/null, /dev/zero, ...), so the profile's real GPU requests are
#   exercised unchanged. A running job holds two of them here (its batch step and its srun step are
#   both counted), so six devices let three jobs run at once. Eight GRES shards serve jobs that ask
#   for a share of a GPU (cluster.gpu_shards_per_run).
# - two partitions on the one node: `debug` (the default) and `gpu`, so a test can tell that a
#   partition chosen through the profile (SBATCH_PARTITION) reached sbatch.
set -euo pipefail

command=${1:?usage: cluster.sh start DIR|stop DIR}

start() {
    local dir; dir=$(realpath -m "${1:?state directory}")
    local host; host=$(hostname -s)
    mkdir -p "$dir"/{munge,state,spool,log,bin,mysql}
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
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=${SLURMDBD_PORT:-6819}
AccountingStoragePass=$dir/munge/munge.socket
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu,shard
NodeName=$host CPUs=4 RealMemory=12000 Gres=gpu:$gpus,shard:8 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
CONF
    : > "$dir/gres.conf"
    for device in "${devices[@]}"; do
        echo "NodeName=$host Name=gpu File=$device" >> "$dir/gres.conf"
    done
    echo "NodeName=$host Name=shard Count=8" >> "$dir/gres.conf"
    cat > "$dir/bin/srun" <<WRAP
#!/bin/sh
export SLURM_CONF=$dir/slurm.conf
exec $(command -v srun) "\$@"
WRAP
    cat > "$dir/bin/sbatch" <<WRAP
#!/bin/bash
# one line per call, written at once under a lock: Snakemake submits jobs concurrently
line=""
for arg in "\$@"; do case "\$arg" in --wrap=*) ;; *) line+="\$arg"\$'\t' ;; esac; done
{ flock 9; printf '%s\n' "\$line" >&9; } 9>> $dir/log/sbatch.args
export SLURM_CONF=$dir/slurm.conf
exec $(command -v sbatch) "\$@"
WRAP
    # The SLURM plugin clears SLURM_* (SLURM_CONF too) when the head runs inside a job
    # (profiles/slurm/head.sbatch): every client it calls finds the config through these wrappers.
    for client in squeue sacct scancel sinfo scontrol; do
        printf '#!/bin/sh\nexport SLURM_CONF=%s/slurm.conf\nexec %s "$@"\n' "$dir" "$(command -v $client)" \
            > "$dir/bin/$client"
        chmod +x "$dir/bin/$client"
    done
    chmod +x "$dir/bin/srun" "$dir/bin/sbatch"
    export SLURM_CONF="$dir/slurm.conf"
    if ! start_accounting "$dir"; then
        tail -n 20 "$dir/log/mariadbd.log" "$dir/log/slurmdbd.out" "$dir/log/slurmdbd.log" >&2 || true
        stop "$dir"
        return 1
    fi
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
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop "$dir"
    return 1
}

# MariaDB (data under DIR/mysql, TCP on localhost only, a password user for slurmdbd) and slurmdbd.
start_accounting() {
    local dir=$1 db_port=${MARIADB_PORT:-3306} password
    password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mariadb-install-db --no-defaults --datadir="$dir/mysql" --user=root --auth-root-authentication-method=socket \
        --skip-test-db >"$dir/log/mariadb-install.log" 2>&1 || return 1
    mariadbd --no-defaults --datadir="$dir/mysql" --user=root --socket="$dir/mysql/mysqld.sock" \
        --port="$db_port" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$dir/mysql/mariadbd.pid" \
        --log-error="$dir/log/mariadbd.log" >"$dir/log/mariadbd.out" 2>&1 &
    echo $! > "$dir/mariadbd.daemon.pid"
    wait_for "MariaDB" mariadb --no-defaults --socket="$dir/mysql/mysqld.sock" -u root -e "SELECT 1" || return 1
    mariadb --no-defaults --socket="$dir/mysql/mysqld.sock" -u root -e "
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$password';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || return 1
    cat > "$dir/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
DbdHost=localhost
DbdPort=${SLURMDBD_PORT:-6819}
SlurmUser=root
PidFile=$dir/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=$password
StorageLoc=slurm_acct_db
CONF
    chmod 600 "$dir/slurmdbd.conf"  # slurmdbd refuses a readable file holding a password
    slurmdbd -D >"$dir/log/slurmdbd.out" 2>&1 &  # reads slurmdbd.conf beside $SLURM_CONF
    echo $! > "$dir/slurmdbd.daemon.pid"
    wait_for "slurmdbd" sacctmgr -n list cluster || return 1
    sacctmgr -i add cluster introspect-test >/dev/null
}

wait_for() {
    local what=$1; shift
    for _ in $(seq 1 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$what did not come up: $*" >&2
    return 1
}

stop() {
    local dir; dir=$(realpath -m "${1:?state directory}")
    for pidfile in slurmd.daemon.pid slurmctld.daemon.pid slurmdbd.daemon.pid mariadbd.daemon.pid munged.pid; do
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
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    *) echo "unknown command $command" >&2; exit 2 ;;
esac
