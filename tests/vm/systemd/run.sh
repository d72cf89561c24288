#!/bin/sh
# The systemd guest's scenario runner, started by lab-scenario.service once the boot reached
# multi-user.target. Prints what the lab's parser reads (VM-BOOT with the uptime at which the
# boot was done, the scenario's RESULT line, VM-DONE), then powers the guest off at once.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
read -r up _ </proc/uptime
echo "VM-BOOT kernel=$(uname -r) uptime=$up mem_total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo) system=\"$(systemctl is-system-running)\" systemd=\"$(systemctl --version | head -n1)\""
# Units that failed during the boot: a scenario's facts mean little on a broken boot.
systemctl --failed --no-legend --plain | sed 's/^/failed| /'
sh /scenario.sh
rc=$?
read -r up _ </proc/uptime
echo "VM-DONE rc=$rc uptime=$up"
sync
# -f: no orderly shutdown of every unit, which would only cost time; nothing is kept.
systemctl poweroff -f -f
