#!/bin/busybox sh
# /init of the VM lab's guests (tests/vm/prepare.sh puts it into the base initramfs).
# Mounts the kernel file systems, mounts cgroup v2 with the memory controller enabled for
# children, runs /scenario.sh (appended by the test) and reports, then powers off.
# Everything the host reads comes over the serial console: lines starting with RESULT, and
# VM-BOOT / VM-DONE around the scenario.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mkdir -p /tmp /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
# Kernel messages above "emergency" stay in the ring buffer (scenarios dump it with `dmesg`)
# instead of cutting through the scenario's lines on the console.
dmesg -n 1
read -r up _ </proc/uptime
echo "VM-BOOT kernel=$(uname -r) uptime=$up mem_total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo) subtree_control=\"$(cat /sys/fs/cgroup/cgroup.subtree_control)\""
if [ -f /scenario.sh ]; then
    sh /scenario.sh
    rc=$?
else
    echo "RESULT FAIL init reason=no_scenario"
    rc=127
fi
read -r up _ </proc/uptime
echo "VM-DONE rc=$rc uptime=$up"
sync
poweroff -f
# poweroff -f does not return; if it does, make the kernel panic (panic=-1 + -no-reboot end QEMU).
exit 1
