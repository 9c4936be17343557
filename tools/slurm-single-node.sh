#!/usr/bin/env bash
# A real single-node SLURM (Debian's slurm-wlm, 22.05 on Debian 12) for the tests and for trying the SLURM profile.
# Adapted from shared/tools/slurm-single-node.sh.  Run as root:
#   tools/slurm-single-node.sh up       install (apt) and start munge, MariaDB + slurmdbd, slurmctld, slurmd
#   tools/slurm-single-node.sh status   exit 0 when the cluster is up with this script's configuration
#   tools/slurm-single-node.sh down     stop the daemons and remove their state and configuration
# `up` is idempotent: a cluster already running with the same configuration is reused (about 1 s); one running with
# another configuration is stopped and started again.
#
# Environment (defaults in brackets):
#   ACCT=1|0          [1] slurmdbd + MariaDB, so `sacct` works (the executor plugin's default status command; failed
#                      jobs get their SLURM state and reason).  0: no accounting; use `slurm-status-command: squeue`.
#   GPUS=N            [2] fake GPUs (gres on /dev/null, /dev/zero, ...) so `--gpus=N` jobs are scheduled and get
#                      CUDA_VISIBLE_DEVICES; 0 = none.  Two, so GPU jobs can run side by side as on a real GPU node.
#   PARTITIONS="a b"  ["cpu gpu"] partitions over the node, the first is the default.  The names match
#                      profiles/slurm/config.yaml, so the profile runs here unchanged.
#   NODE_MEM_MB=M     [128000] memory the node advertises (SlurmdParameters=config_overrides: more than the machine
#                      has is allowed, memory is not enforced here), so the profile's per-rule `mem_mb` fits.
#   KILL_WAIT=S       [5] seconds between SIGTERM and SIGKILL when a job hits its time limit.
set -euo pipefail
ACCT=${ACCT:-1}; GPUS=${GPUS:-2}; PARTITIONS=${PARTITIONS:-cpu gpu}; NODE_MEM_MB=${NODE_MEM_MB:-128000}
KILL_WAIT=${KILL_WAIT:-5}
RUN=/run/slurm; SPOOL=/var/spool/slurm; LOG=/var/log/slurm; CONF=/etc/slurm/slurm.conf
H=$(hostname -s)

wait_for() {  # wait_for NAME COMMAND: poll COMMAND every 0.5 s for up to 60 s
  for _ in $(seq 1 120); do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "slurm-single-node: timeout waiting for $1; see $LOG/" >&2; exit 1
}
pid_of() { cat "$1" 2>/dev/null || true; }  # a daemon may remove its pid file while we look
stop() { for p in "$@"; do local pid; pid=$(pid_of "$p"); [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done; }
wait_gone() {  # wait up to 10 s for each daemon to exit
  for p in "$@"; do local pid; pid=$(pid_of "$p"); [ -n "$pid" ] || continue
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done; rm -f "$p"; done
}

fake_gpu_files() {  # GPUS character devices that exist on any Linux machine
  local devices=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty)
  [ "$GPUS" -le ${#devices[@]} ] || { echo "slurm-single-node: at most ${#devices[@]} fake GPUs" >&2; exit 2; }
  echo "${devices[@]:0:$GPUS}"
}

slurm_conf() {  # the configuration this script writes, on stdout
  local default=YES gres="" cpus; cpus=$(nproc)
  [ "$GPUS" -gt 0 ] && gres="Gres=gpu:$GPUS"
  cat <<CONF
# Written by tools/slurm-single-node.sh (neurotext tests): one node, partitions: $PARTITIONS.
ClusterName=ci
SlurmctldHost=$H
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
KillWait=$KILL_WAIT
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
CONF
  if [ "$ACCT" = 1 ]; then
    printf 'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n'
    printf 'AccountingStorageTRES=gres/gpu\nAccountingStoreFlags=job_comment\n'
  else
    echo 'AccountingStorageType=accounting_storage/none'
  fi
  [ "$GPUS" -gt 0 ] && echo 'GresTypes=gpu'
  echo "NodeName=$H CPUs=$cpus RealMemory=$NODE_MEM_MB $gres State=UNKNOWN"
  for p in $PARTITIONS; do
    echo "PartitionName=$p Nodes=$H Default=$default MaxTime=INFINITE State=UP"; default=NO
  done
}

status() {  # up, with this configuration, and the node usable
  [ -f $CONF ] && cmp -s $CONF <(slurm_conf) || return 1
  scontrol ping 2>/dev/null | grep -q UP || return 1
  sinfo -h -n "$H" -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' || return 1
  if [ "$ACCT" = 1 ]; then sacct -n -X -S now >/dev/null 2>&1 || return 1; fi
}

down() {
  local daemons="$RUN/slurmd.pid $RUN/slurmctld.pid $RUN/slurmdbd.pid"
  stop $daemons; wait_gone $daemons
  if [ -s /run/mysqld/mariadb-ci.pid ]; then mysql -e 'DROP DATABASE IF EXISTS slurm_acct_db' || true; fi
  stop /run/mysqld/mariadb-ci.pid /run/munge/munged.pid; wait_gone /run/mysqld/mariadb-ci.pid /run/munge/munged.pid
  rm -rf $SPOOL $RUN $LOG $CONF /etc/slurm/slurmdbd.conf /etc/slurm/gres.conf
}

install_packages() {  # apt only when something is missing (then `apt-get update` first)
  local pk="slurmctld slurmd slurm-client munge" missing=""
  [ "$ACCT" = 1 ] && pk="$pk slurmdbd mariadb-server"
  for p in $pk; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "slurm-single-node: needs apt-get (Debian/Ubuntu) to install$missing" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # wait for a dpkg lock held by another apt run instead of failing at once
  apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
}

start_accounting() {
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
  setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mariadb-ci.pid >$LOG/mariadb.out 2>&1 </dev/null &
  wait_for mariadb "mysqladmin ping"
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost';
            ALTER USER 'slurm'@'localhost' IDENTIFIED BY 'slurmci'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
            FLUSH PRIVILEGES;"
  printf 'AuthType=auth/munge\nDbdHost=localhost\nSlurmUser=root\nLogFile=%s/slurmdbd.log\nPidFile=%s/slurmdbd.pid
StorageType=accounting_storage/mysql\nStorageHost=localhost\nStorageUser=slurm\nStoragePass=slurmci
StorageLoc=slurm_acct_db\n' $LOG $RUN >/etc/slurm/slurmdbd.conf
  chmod 600 /etc/slurm/slurmdbd.conf
  /usr/sbin/slurmdbd; wait_for slurmdbd "sacctmgr -n show cluster"
}

up() {
  [ "$(id -u)" = 0 ] || { echo "slurm-single-node: must run as root" >&2; exit 1; }
  if status; then echo "slurm-single-node: already up"; sinfo; return 0; fi
  down
  install_packages
  getent hosts "$H" >/dev/null || echo "127.0.0.1 $H" >>/etc/hosts
  [ -s /etc/munge/munge.key ] || { mungekey -c -f; chown munge:munge /etc/munge/munge.key; }
  mkdir -p /run/munge $RUN $SPOOL/ctld $SPOOL/d $LOG /etc/slurm; chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged; wait_for munge "munge -n | unmunge"
  if [ "$GPUS" -gt 0 ]; then
    # Fake devices: one character device file per GPU (SLURM binds jobs to them and sets CUDA_VISIBLE_DEVICES).
    { echo "AutoDetect=off"; for f in $(fake_gpu_files); do echo "NodeName=$H Name=gpu File=$f"; done; } \
      >/etc/slurm/gres.conf
  fi
  slurm_conf >$CONF
  [ "$ACCT" = 1 ] && start_accounting
  /usr/sbin/slurmctld; /usr/sbin/slurmd
  wait_for node-idle "sinfo -h -n $H -o %T | grep -qx idle"
  if [ "$ACCT" = 1 ]; then wait_for sacct "sacct -n -X -S now"; fi
  sinfo
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
