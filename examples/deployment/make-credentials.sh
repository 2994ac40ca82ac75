#!/usr/bin/env bash
# Credentials for a Flower deployment on loopback (docs/deployment.md):
#   a CA (ca.pem), the SuperLink's TLS certificate for 127.0.0.1 and localhost signed by
#   it (superlink.pem, superlink.key), and one ECDSA key pair per SuperNode
#   (supernode-<i>, supernode-<i>.pub) for SuperNode authentication.
# Usage: make-credentials.sh DIR NUM_SUPERNODES
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 DIR NUM_SUPERNODES" >&2
  exit 2
fi
dir=$1
nodes=$2
mkdir -p "$dir"
cd "$dir"

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=fedunlearn loopback CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout superlink.key -out superlink.csr 2>/dev/null
printf "subjectAltName=IP:127.0.0.1,DNS:localhost\n" > superlink.ext
openssl x509 -req -in superlink.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile superlink.ext -out superlink.pem 2>/dev/null
rm -f superlink.csr superlink.ext ca.srl

for ((i = 0; i < nodes; i++)); do
  rm -f "supernode-$i" "supernode-$i.pub"
  ssh-keygen -q -t ecdsa -b 384 -N "" -C "supernode-$i" -f "supernode-$i"
done
echo "wrote $(pwd): ca.pem, superlink.pem, superlink.key, supernode-0..$((nodes - 1)) keys"
