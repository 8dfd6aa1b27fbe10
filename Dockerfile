# credwatch agent image, for users who build with a registry:
#   npm ci && npm run package && docker build -t REGISTRY/credwatch:0.1.0 .
# scripts/build-image-offline.sh builds the same image with no registry (debootstrap + docker import).
# Run it with the settings of deploy/kubernetes/credwatch.yaml (host PID and network namespaces, the
# capabilities AUDIT_CONTROL AUDIT_READ SYS_PTRACE, the kubelet pods dir and the cgroup tree mounted).
FROM debian:bookworm-slim
ARG VERSION=0.1.0
COPY dist/packages/credwatch_${VERSION}_amd64.deb /tmp/credwatch.deb
RUN dpkg -i /tmp/credwatch.deb && rm -f /tmp/credwatch.deb
ENV NODE_OPTIONS=--max-semi-space-size=2
ENTRYPOINT ["/usr/bin/credwatch"]
CMD ["run", "--config", "/etc/credwatch/config.yaml"]
