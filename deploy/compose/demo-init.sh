#!/bin/sh
# Demo only: a throw-away CA and a certificate for the host `mail` (Dovecot's IMAPS), made once into
# /demo-certs. The executors trust ca.pem through PW_IMAP_CA_FILE. Never use these outside the demo.
# DEMO_CERTS and DEMO_MAIL move the two directories (tests/it/compose_stack.rs runs this script in a temp dir).
set -eu
certs=${DEMO_CERTS:-/demo-certs}
mail=${DEMO_MAIL:-/srv/mail}
mkdir -p "$mail" "$certs"
touch "$mail/dovecot-users"
chown -R 10001:10001 "$mail"
cd "$certs"
if [ -s ca.pem ] && [ -s mail.pem ] && [ -s mail.key ]; then
  echo "demo certificates already present"
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=podcast-worker demo CA" \
  -keyout ca.key -out ca.pem
openssl req -newkey rsa:2048 -nodes -subj "/CN=mail" -keyout mail.key -out mail.csr
printf 'subjectAltName=DNS:mail,DNS:localhost\nbasicConstraints=CA:FALSE\n' > mail.ext
openssl x509 -req -in mail.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
  -extfile mail.ext -out mail.pem
rm -f ca.key mail.csr mail.ext ca.srl
chmod 644 ca.pem mail.pem
chmod 640 mail.key
echo "demo certificates written"
