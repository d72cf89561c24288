#!/bin/sh
# k8s_node: a Kubernetes node with the systemd cgroup driver on cgroup v2 runs short of memory,
# and oomward runs as the project's DaemonSet would run it. No kubelet and no container
# runtime: the layout they would make is made by hand, the way they make it.
#
# - The DaemonSet's container: /lab/k8s-daemonset.sh, written by tests/systemd_lab.rs from
#   packaging/kubernetes/oomward.yaml (never copied by hand): the container's command and args,
#   its env, the ConfigMap's files at the volume's mountPath, the pod's QoS class and memory
#   request and limit. The package supplies the binary (at the command's path when that is not
#   /usr/bin/oomward); its own unit is stopped and disabled. The daemon runs as a transient
#   service `oomward-ds` in a pod slice of its QoS class, as kubelet would place the pod
#   (MemoryMax= its limit when it has one), at the oom_score_adj kubelet computes for it, with
#   stdout and stderr in /tmp/oomward.log (a container's are a file, not the journal), confined
#   as far as systemd can say what the container's securityContext and mounts say: its
#   capabilities, no new privileges, a read-only root, read-only volumes (the cgroup tree too)
#   read-only. The ConfigMap's volume is laid out as kubelet writes one (a 0777 mount point, a
#   timestamped directory, `..data` and symlinks). Not modelled: the CPU limit (under software
#   emulation it would measure the emulator), seccomp, the pod's network namespace.
# - Pods: kubelet's slices made as kubelet makes them (StartTransientUnit over D-Bus):
#   kubepods.slice, kubepods-burstable.slice, kubepods-besteffort.slice, and one slice per pod
#   (`kubepods[-CLASS]-pod<uid, - as _>.slice`, MemoryMax= the pod's limit where it has one); each
#   container a scope `cri-containerd-<64 hex>.scope` in its pod's slice (systemd-run --scope,
#   as runc asks systemd for one), its process a memhog at kubelet's oom_score_adj. Kubelet's log
#   directories name them: /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log and the
#   /var/log/containers/<pod>_<ns>_<container>-<id>.log symlinks.
#     Guaranteed  payments/ledger-0, limit = request 128Mi, holds 64 MiB, adj -997
#     Burstable   shop/web-6d8f7b9c4-x7k2p, request 384Mi, limit 512Mi, holds 80 MiB, adj by
#                 kubelet's formula 1000 - 1000 × request / MemTotal (about 480 here)
#     BestEffort  batch/thumbs-28391040-q9z4m, no limit, adj 1000: grows at 150 MiB/s towards
#                 2000 MiB, so the node runs short (there is no pod limit to reach)
# - kubelet and the runtime: copies of memhog at /usr/bin/kubelet, /usr/bin/containerd and
#   /usr/bin/containerd-shim-runc-v2, each in a unit of its own (system.slice), run as root at
#   oom_score_adj 1000, kubelet's holding 130 MiB: unprotected, it would rank first while the
#   grower is still smaller, and it is the kernel's first choice. Only the config's exe rules
#   keep them off the list.
# Facts: oomward's first decision names the BestEffort process and no decision names another;
# the kill report carries qos=besteffort and the pod's namespace and name; the Guaranteed and
# Burstable processes live; kubelet, containerd and the shim keep their MainPID with NRestarts
# 0; /proc/vmstat oom_kill did not move; the daemon is the same process at the end.
#@ mem=768M
. /lab/lib.sh
. /lab/systemd.sh
. /lab/k8s-daemonset.sh

# kubelet_adj QOS REQUEST_BYTES: the oom_score_adj kubelet gives a pod's containers.
kubelet_adj() {
    case "$1" in
    guaranteed) echo -997 ;;
    besteffort) echo 1000 ;;
    *)
        awk -v req="$2" '/^MemTotal:/ {
            a = 1000 - int(1000 * req / ($2 * 1024))
            if (a < 3) a = 3
            if (a >= 1000) a = 999
            print a
        }' /proc/meminfo
        ;;
    esac
}

# slice NAME [MEMORY_MAX_BYTES]: a transient slice, as kubelet's systemd driver makes one.
slice() {
    if [ -n "$2" ]; then
        busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
            org.freedesktop.systemd1.Manager StartTransientUnit 'ssa(sv)a(sa(sv))' \
            "$1" replace 2 Description s "lab $1" MemoryMax t "$2" 0 >/dev/null
    else
        busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
            org.freedesktop.systemd1.Manager StartTransientUnit 'ssa(sv)a(sa(sv))' \
            "$1" replace 1 Description s "lab $1" 0 >/dev/null
    fi || echo "slice| $1 not made"
}

# pod_slice QOS UID: the pod's slice name under the systemd driver.
pod_slice() {
    uid_=$(echo "$2" | tr - _)
    case "$1" in
    guaranteed) echo "kubepods-pod$uid_.slice" ;;
    *) echo "kubepods-$1-pod$uid_.slice" ;;
    esac
}

# pod_logs NAMESPACE POD UID CONTAINER ID: kubelet's log directory and symlink for a container.
pod_logs() {
    d=/var/log/pods/$1_$2_$3/$4
    mkdir -p "$d" /var/log/containers
    : >"$d/0.log"
    ln -sf "$d/0.log" "/var/log/containers/$2_$1_$4-$5.log"
}

# container OUT QOS UID ID LIMIT_BYTES ADJ MEMHOG_ARGS...: a container's process in its scope
# (MemoryMax= its limit, as runc sets it, when it has one). Sets HOG_PID.
container() {
    out=$1 qos=$2 uid=$3 id=$4 limit=$5 adj=$6
    shift 6
    if [ -n "$limit" ]; then
        set -- -p "MemoryMax=$limit" /usr/local/bin/memhog --adj="$adj" "$@"
    else
        set -- /usr/local/bin/memhog --adj="$adj" "$@"
    fi
    MEMHOG=systemd-run start_memhog "$out" --quiet --scope --slice="$(pod_slice "$qos" "$uid")" \
        --unit="cri-containerd-$id.scope" "$@"
}

MIB=1048576
G_NS=payments G_POD=ledger-0 G_CTR=ledger
G_UID=3c1f0d2a-8b7e-4c55-9e21-5a0b6c7d8e9f
G_ID=4e8a1c7f3b2d90e5a6f1c8b7d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1
B_NS=shop B_POD=web-6d8f7b9c4-x7k2p B_CTR=web
B_UID=7d2e9a41-5c3b-4f8e-a1d6-0b9c8e7f6a5d
B_ID=9b1d3f5a7c9e0b2d4f6a8c0e1f3b5d7a9c1e3f5b7d9a0c2e4f6b8d0a1c3e5f7b
E_NS=batch E_POD=thumbs-28391040-q9z4m E_CTR=thumbs
E_UID=a5f3c8e1-2d4b-4a6c-9e7f-1b3d5f7a9c0e
E_ID=c2e4a6f8b0d1e3a5c7f9b2d4e6a8c0f1d3b5a7e9c1f2e4b6d8a0c3e5a7f9b1d2
DS_UID=0e6b4d2f-9a7c-4e5b-8d1f-3c5a7e9b1d4f

install_package
# The package's own unit stands aside: the DaemonSet's container is the only daemon.
systemctl disable --now --quiet oomward
[ "$DS_EXE" = /usr/bin/oomward ] || { mkdir -p "$(dirname "$DS_EXE")" && cp /usr/bin/oomward "$DS_EXE"; }
ds_files

# kubelet and the runtime, the kernel's first choices.
cp /usr/local/bin/memhog /usr/bin/kubelet
cp /usr/local/bin/memhog /usr/bin/containerd
cp /usr/local/bin/memhog /usr/bin/containerd-shim-runc-v2
systemd-run --unit=kubelet --quiet -p OOMScoreAdjust=1000 /usr/bin/kubelet --hold 130
systemd-run --unit=containerd --quiet -p OOMScoreAdjust=1000 /usr/bin/containerd --hold 30
systemd-run --unit=containerd-shim --quiet -p OOMScoreAdjust=1000 /usr/bin/containerd-shim-runc-v2 --hold 10
for u in kubelet containerd containerd-shim; do
    wait_until 300 sh -c "journalctl -q -u $u -o cat | grep -q '^ready'" || echo "$u| not ready"
done

# kubelet's slices (kubepods.slice at the node's capacity: no reservations), the log
# directories, the pods.
mem_total=$(awk '/^MemTotal:/ { print $2 * 1024 }' /proc/meminfo)
slice kubepods.slice "$mem_total"
slice kubepods-burstable.slice
slice kubepods-besteffort.slice
slice "$(pod_slice guaranteed "$G_UID")" $((128 * MIB))
slice "$(pod_slice burstable "$B_UID")" $((512 * MIB))
slice "$(pod_slice besteffort "$E_UID")"
pod_logs "$G_NS" "$G_POD" "$G_UID" "$G_CTR" "$G_ID"
pod_logs "$B_NS" "$B_POD" "$B_UID" "$B_CTR" "$B_ID"
pod_logs "$E_NS" "$E_POD" "$E_UID" "$E_CTR" "$E_ID"
b_adj=$(kubelet_adj burstable $((384 * MIB)))
container /tmp/guaranteed.out guaranteed "$G_UID" "$G_ID" $((128 * MIB)) -997 --hold 64 ||
    echo "pod| guaranteed not ready"
g_pid=$HOG_PID
container /tmp/burstable.out burstable "$B_UID" "$B_ID" $((512 * MIB)) "$b_adj" --hold 80 ||
    echo "pod| burstable not ready"
b_pid=$HOG_PID

# The DaemonSet's pod.
ds_adj=$(kubelet_adj "$DS_QOS" "$DS_MEMORY_REQUEST")
# A critical pod (system-node-critical, system-cluster-critical) gets Guaranteed's adj.
[ "$DS_CRITICAL" = yes ] && ds_adj=-997
ds_slice=$(pod_slice "$DS_QOS" "$DS_UID")
slice "$ds_slice" "$DS_MEMORY_LIMIT"
echo "daemonset| $DS_ARGV"
echo "daemonset| env: $DS_ENV"
echo "daemonset| container: $DS_PROPERTIES"
find /etc/oomward -exec ls -ld {} + | sed 's/^/daemonset| /' 
echo "daemonset| qos=$DS_QOS adj=$ds_adj slice=$ds_slice memory_max=${DS_MEMORY_LIMIT:-none}"
ds_run --unit=oomward-ds --quiet --slice="$ds_slice" -p OOMScoreAdjust="$ds_adj" \
    -p StandardOutput=append:/tmp/oomward.log -p StandardError=append:/tmp/oomward.log
if ! wait_until 300 grep -qs 'event=start\|"event":"start"' /tmp/oomward.log; then
    dump /tmp/oomward.log oomward
    echo "unit| oomward-ds $(systemctl is-active oomward-ds) $(prop oomward-ds Result)"
    result FAIL reason=oomward_did_not_start
    exit 1
fi
ds_pid=$(main_pid oomward-ds)
ds_cgroup=$(cut -d: -f3 "/proc/$ds_pid/cgroup")
ds_adj_now=$(cat "/proc/$ds_pid/oom_score_adj")
# The liveness probe's command, in the container's environment, once the first round wrote
# the status file.
liveness_rc=none
if [ -n "$DS_LIVENESS" ]; then
    probe() { eval "systemd-run --quiet --wait --pipe $DS_PROPERTIES $DS_ENV -- $DS_LIVENESS" >/tmp/liveness.out 2>&1; }
    wait_until 100 probe
    liveness_rc=0
    probe || liveness_rc=$?
    dump /tmp/liveness.out liveness
fi
# What Prometheus asks: GET /metrics on the metrics port ([report] metrics_listen).
port=$(sed -n 's/^metrics_listen = ".*:\([0-9]*\)"/\1/p' /etc/oomward/config.d/*.toml | tail -n1)
metrics_status=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port &&
    printf 'GET /metrics HTTP/1.0\r\nHost: lab\r\n\r\n' >&3 && head -n1 <&3" 2>&1 | awk '{ print $2 }')

kubelet_pid=$(main_pid kubelet)
containerd_pid=$(main_pid containerd)
shim_pid=$(main_pid containerd-shim)
kubelet_score=$(cat "/proc/$kubelet_pid/oom_score")
kubelet_rss_kb=$(awk '/^RssAnon:/ { print $2 }' "/proc/$kubelet_pid/status")
oomward rank --top 12 >/tmp/rank.txt 2>&1
dump /tmp/rank.txt rank
# kubelet's stand-in's badness (fixed: its size and adj do not change), to compare with the
# victim's when it was chosen.
kubelet_badness=$(awk -v p="$kubelet_pid" '$1 == p { print $9 }' /tmp/rank.txt)
free -m | sed 's/^/free| /'
oom_before=$(keyed /proc/vmstat oom_kill)

# The BestEffort pod's container grows: the node runs short.
t0=$(now_ms)
container /tmp/besteffort.out besteffort "$E_UID" "$E_ID" "" 1000 --rate 150 --grow 2000 ||
    echo "pod| besteffort not ready"
e_pid=$HOG_PID
wait_exit "$e_pid" 900
e_status=$STATUS
e_ms=$(($(now_ms) - t0))
oom_after=$(keyed /proc/vmstat oom_kill)
# The report can trail the decision by a moment.
wait_until 50 grep -qs 'event=report\|"event":"report"' /tmp/oomward.log || true

# A field of a log line, text (key=value) or JSON ("key":value) alike. line_field KEY
line_field() {
    tr ' ,{}' '\n\n\n\n' | sed -n "s/^$1=//p; s/^\"$1\":\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}\$/\\1/p" | head -n1
}
grep -E 'event=(term|kill) |"event":"(term|kill)"' /tmp/oomward.log >/tmp/decisions.txt
decisions=$(grep -c . /tmp/decisions.txt)
victim=$(head -n1 /tmp/decisions.txt | line_field pid)
first_event=$(head -n1 /tmp/decisions.txt | line_field event)
others=0
while read -r l; do
    [ "$(echo "$l" | line_field pid)" = "$e_pid" ] || others=$((others + 1))
done </tmp/decisions.txt
grep -m1 'event=report\|"event":"report"' /tmp/oomward.log >/tmp/report.txt
report_pid=$(line_field pid </tmp/report.txt)
report_qos=$(line_field qos </tmp/report.txt)
report_ns=$(line_field namespace </tmp/report.txt)
report_pod=$(line_field pod </tmp/report.txt)
report_container=$(line_field container </tmp/report.txt)
victim_badness=$(line_field badness </tmp/report.txt)
# The victim's cgroup as the daemon read it (the process may be gone before the shell looks).
report_cgroup=$(line_field cgroup </tmp/report.txt)
decision_qos=$(head -n1 /tmp/decisions.txt | line_field qos)

# The survivors.
g_alive=no b_alive=no
alive "$g_pid" && g_alive=yes
alive "$b_pid" && b_alive=yes
runtime_ok=yes
for u in kubelet containerd containerd-shim oomward-ds; do
    echo "unit| $u MainPID=$(main_pid $u) NRestarts=$(prop $u NRestarts) $(systemctl is-active $u)"
done
[ "$(main_pid kubelet)" = "$kubelet_pid" ] && [ "$(prop kubelet NRestarts)" = 0 ] && systemctl -q is-active kubelet || runtime_ok=no
[ "$(main_pid containerd)" = "$containerd_pid" ] && [ "$(prop containerd NRestarts)" = 0 ] && systemctl -q is-active containerd || runtime_ok=no
[ "$(main_pid containerd-shim)" = "$shim_pid" ] && [ "$(prop containerd-shim NRestarts)" = 0 ] && systemctl -q is-active containerd-shim || runtime_ok=no
ds_pid_after=$(main_pid oomward-ds)
kubelet_adj_now=$(cat "/proc/$kubelet_pid/oom_score_adj" 2>/dev/null)

dump /tmp/oomward.log oomward
dump /tmp/besteffort.out besteffort
dmesg_oom
facts="dpkg_rc=$DPKG_RC ds_qos=$DS_QOS ds_adj=$ds_adj_now ds_cgroup=$ds_cgroup metrics_port=$port"
facts="$facts metrics_status=$metrics_status liveness_rc=$liveness_rc"
facts="$facts besteffort=$e_pid report_cgroup=$report_cgroup besteffort_status=$e_status besteffort_ms=$e_ms"
facts="$facts decisions=$decisions first_event=$first_event victim=$victim others=$others"
facts="$facts decision_qos=$decision_qos report_pid=$report_pid report_qos=$report_qos"
facts="$facts report_namespace=$report_ns report_pod=$report_pod report_container=$report_container"
facts="$facts oom_kill=$((oom_after - oom_before))"
facts="$facts guaranteed=$g_pid guaranteed_alive=$g_alive burstable=$b_pid burstable_alive=$b_alive"
facts="$facts burstable_adj=$b_adj kubelet=$kubelet_pid kubelet_exe=$(readlink "/proc/$kubelet_pid/exe")"
facts="$facts kubelet_adj=$kubelet_adj_now kubelet_score=$kubelet_score kubelet_rss_mib=$((kubelet_rss_kb / 1024))"
facts="$facts kubelet_badness=$kubelet_badness victim_badness=$victim_badness"
facts="$facts containerd=$containerd_pid shim=$shim_pid runtime_ok=$runtime_ok"
facts="$facts oomward_pid=$ds_pid oomward_pid_after=$ds_pid_after"
if [ "$DPKG_RC" = 0 ] && [ -n "$victim" ] && [ "$victim" = "$e_pid" ] && [ "$others" = 0 ] &&
    [ "$oom_after" = "$oom_before" ] && [ "$g_alive" = yes ] && [ "$b_alive" = yes ] &&
    [ "$runtime_ok" = yes ] && [ "$report_qos" = besteffort ] && [ "$report_ns" = "$E_NS" ] &&
    [ "$report_pod" = "$E_POD" ] && [ "$ds_pid_after" = "$ds_pid" ]; then
    result PASS "$facts"
else
    result FAIL "$facts"
fi
