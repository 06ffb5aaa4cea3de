#!/usr/bin/env bash
# Installs the Debian packages the tests need, only when some are missing (idempotent, quiet).
set -euo pipefail
# openssh-client: sftp, scp, ssh-keygen for the tests; openssl, whois (mkpasswd): reference
# password hashes; openssh-server: the sshd + sftp-server that `make bench` compares against;
# slapd, ldap-utils: the real LDAP server the ldap authentication tests start; haproxy,
# keepalived, iproute2: the load balancer and the VRRP pair (in network namespaces) of the
# high-availability tests.
PACKAGES=(openssh-client openssh-server openssl whois slapd ldap-utils haproxy keepalived iproute2)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting system daemons on their default ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
