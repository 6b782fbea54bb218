#!/bin/sh
# u7s-vxlan-csum: keeps transmit checksum offload off on Flannel's VXLAN device (flannel.1).
# The rootless engine's NAT rewrites the outer UDP packet, and with an offloaded checksum the
# peer drops it: ICMP passes but TCP between pods on different hosts hangs. The udev rule
# (90-flannel.rules) does the same when udev runs in the node; this service does not depend on
# udev, and also catches a device that Flannel recreated.
dev=${1:-flannel.1}
while :; do
  if [ -e "/sys/class/net/$dev" ] && ethtool -k "$dev" 2>/dev/null | grep -q 'tx-checksum-ip-generic: on'; then
    if ethtool -K "$dev" tx-checksum-ip-generic off; then
      echo "u7s-vxlan-csum: tx checksum offload turned off on $dev"
    fi
  fi
  sleep 5
done
