#!/bin/sh
# The kubelet's part of starting a container, run as root inside `unshare --mount` (a private
# mount namespace: nothing here is visible outside, and it all goes when the process exits).
#   sandbox.sh CGROUP_DIR SA_STAGE_DIR READ_ONLY_ROOT UID GID TERMINATION_FILE TERMINATION_PATH -- COMMAND...
# CGROUP_DIR: a cgroup v1 memory cgroup to join ("" for none). SA_STAGE_DIR: token, ca.crt and
# namespace of the Pod's ServiceAccount. READ_ONLY_ROOT: 1 for securityContext.readOnlyRootFilesystem.
# TERMINATION_FILE: the container's writable termination-message file, bind-mounted at
# TERMINATION_PATH (terminationMessagePath) as the kubelet does ("" for none).
set -eu
cgroup=$1 stage=$2 ro=$3 uid=$4 gid=$5 term_file=$6 term_path=$7
shift 7
[ "${1:-}" = "--" ] && shift
[ -n "$cgroup" ] && echo $$ > "$cgroup/cgroup.procs"

# The ServiceAccount volume at kube's fixed path, on a tmpfs of its own, read-only as the
# kubelet mounts it. /var/run is /run here; a container sees no host /run anyway.
mount -t tmpfs -o mode=0755,size=4m,nosuid,nodev tmpfs /run
sa=/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$sa"
cp "$stage/token" "$stage/ca.crt" "$stage/namespace" "$sa/"
chmod 0644 "$sa/token" "$sa/ca.crt" "$sa/namespace"
mount -o remount,ro,nosuid,nodev /run

# The mount point must exist; an empty file at that path (e.g. /dev/termination-log) is the only
# trace outside this namespace, as on a node.
if [ -n "$term_file" ]; then
  [ -e "$term_path" ] || { mkdir -p "$(dirname "$term_path")"; : > "$term_path"; }
  mount --bind "$term_file" "$term_path"
fi

# readOnlyRootFilesystem: every filesystem the container sees read-only, except the kernel's
# (/proc, /sys, /dev), as a container's root and image layers are; remounts are per namespace.
if [ "$ro" = 1 ]; then
  awk '{ print $5 " " $6 }' /proc/self/mountinfo | while read -r mp opts; do
    case "$mp" in /proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /run) continue ;; esac
    case ",$opts," in *,ro,*) continue ;; esac
    mount -o remount,bind,ro "$(printf '%b' "$mp")"
  done
fi

# runAsUser/runAsGroup, no supplementary groups, allowPrivilegeEscalation: false, capabilities
# dropped: the process the container runs.
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all -- "$@"
