# The u7s cluster TEST image (localhost/u7s-test-cluster-node:bookworm): the systemd test node
# image plus real kubectl and helm (from the npm layer) and the TEST DOUBLES of kubeadm and of the
# Kubernetes API server, with a test Flannel chart where u7s's node image keeps the real one.
# tests/setup-engines.sh (phase cluster-image) assembles the build context and builds it with the
# legacy builder from the local base image; the recipe key is a label added at build time.
ARG BASE_IMAGE=localhost/u7s-test-node:bookworm
FROM ${BASE_IMAGE}

# curl and openssl: the kubeadm double's tools; ca-certificates for curl's default store;
# ethtool: for u7s's VXLAN checksum service, as in u7s's node image; iperf3: bench/two-hosts.ts and
# bench/port-forward.ts measure with it. iperf3 asks whether to start its daemon: preseeded "no" (also
# its default), so the package's iperf3.service stays disabled and nothing listens on 5201.
RUN echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections \
  && apt-get update -q \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssl curl ca-certificates ethtool iperf3 \
  && apt-get clean \
  && rm -rf /var/lib/apt/lists/*

# Modes come from the build context (the legacy builder has no COPY --chmod).
COPY kubectl helm kube-api-double /usr/local/bin/
COPY kubeadm /usr/bin/kubeadm
# Under /usr/lib and /usr/local, not /etc or /opt: those are volumes of a u7s node.
COPY u7s-kube-apiserver-double.service /usr/lib/systemd/system/
COPY flannel /usr/local/share/u7s/charts/flannel
COPY u7s-entrypoint.sh /usr/local/bin/u7s-entrypoint
# u7s's VXLAN checksum service, installed and enabled exactly as assets/Dockerfile does.
COPY u7s-vxlan-csum.sh /usr/local/libexec/u7s-vxlan-csum
COPY u7s-vxlan-csum.service /usr/lib/systemd/system/u7s-vxlan-csum.service
RUN mkdir -p /usr/lib/systemd/system/multi-user.target.wants \
  && ln -sf ../u7s-vxlan-csum.service /usr/lib/systemd/system/multi-user.target.wants/u7s-vxlan-csum.service
# u7s gives the node KUBECONFIG=/etc/kubernetes/admin.conf; this covers `exec` without it.
RUN mkdir -p /root/.kube /var/lib/u7s-doubles && ln -s /etc/kubernetes/admin.conf /root/.kube/config

# As u7s's node image: the entrypoint writes the kubelet's node labels, then execs systemd.
ENTRYPOINT ["/usr/local/bin/u7s-entrypoint"]
CMD ["/sbin/init"]
