#!/usr/bin/env bash
# A private Ceph RGW (real S3 server) on loopback for the lab and for humans:
#   cluster/lab/rgw.sh start DIR [NAME]   one monitor, one OSD (memstore: data in RAM) and radosgw
#                                         (beast) with fresh fsid, cephx keys and S3 credentials;
#                                         prints the S3 settings (also in DIR/s3.env) when an S3
#                                         request succeeds.
#   cluster/lab/rgw.sh stop DIR           SIGKILLs the daemons it started (by the pids in DIR/pids)
#                                         and removes DIR.
# The same steps and the same ceph.conf template (cluster/lab/ceph.conf.template) as the tests'
# helper test/helpers/rgw.ts. Needs: apt-get install radosgw ceph-mon ceph-osd ceph-common (and
# python3 and curl >= 7.75 for the readiness probe). DIR on /dev/shm keeps the monitor store in RAM.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
template=$here/ceph.conf.template
marker=.tessera-rgw-lab

usage() { echo "usage: $0 start DIR [NAME] | stop DIR" >&2; exit 2; }
die() { echo "rgw.sh: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

log_tail() {
  local d=$1 f
  for f in "$d"/log/client.rgw.*.log "$d"/log/osd.0.log "$d"/log/mon.a.log "$d"/*.out; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2; tail -n 20 "$f" >&2
  done
}

stop() {
  local d=$1
  [ -d "$d" ] || die "no directory $d"
  d=$(cd "$d" && pwd)
  [ -f "$d/$marker" ] || die "$d was not made by rgw.sh start (no $marker); not touching it"
  if [ -f "$d/pids" ]; then
    local pid
    # Only processes whose command line names this directory (a recycled pid is left alone).
    while read -r pid _; do
      [ -n "$pid" ] && grep -qaF "$d/ceph.conf" "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    done <"$d/pids"
    # Wait for them to go so their ports and memory are free when we return.
    for _ in $(seq 1 50); do
      local alive=0
      while read -r pid _; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$d/pids"
      [ "$alive" -eq 0 ] && break
      sleep 0.1
    done
  fi
  rm -rf "$d"
}

start() {
  local d=$1 name=${2:-lab}
  [[ "$name" =~ ^[A-Za-z0-9_-]{1,32}$ ]] || die "bad NAME $name"
  for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph python3 curl; do
    command -v "$b" >/dev/null || die "$b not found (apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common)"
  done
  if [ -e "$d" ] && [ -n "$(ls -A "$d")" ]; then die "$d exists and is not empty"; fi
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  touch "$d/$marker"
  mkdir -p "$d/run" "$d/log" "$d/crash" "$d/rgw" "$d/osd.0"
  local t0; t0=$(date +%s%N)

  local fsid osd_uuid mon_port rgw_port access secret
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  while [ "$rgw_port" = "$mon_port" ]; do rgw_port=$(free_port); done
  access=TESSERA$(head -c 4096 /dev/urandom | tr -dc 'A-Z0-9' | head -c 13)
  secret=$(head -c 4096 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 40)

  sed -e "s|@FSID@|$fsid|g; s|@DIR@|$d|g; s|@MON_PORT@|$mon_port|g; s|@RGW_PORT@|$rgw_port|g" \
      -e "s|@RGW_NAME@|$name|g; s|@OSD_BYTES@|${RGW_LAB_OSD_BYTES:-4294967296}|g" "$template" >"$d/ceph.conf"
  export CEPH_CONF=$d/ceph.conf

  # cephx keys for this run only: the monitor imports every key of this keyring at mkfs.
  ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n "client.rgw.$name" --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$d/monmap" >/dev/null

  : >"$d/pids"
  spawn() { # spawn LABEL CMD...: runs a daemon in the foreground of its own session, records its pid
    local label=$1; shift
    setsid "$@" </dev/null >>"$d/$label.out" 2>&1 &
    echo "$! $label" >>"$d/pids"
  }
  fail() { echo "rgw.sh: $*" >&2; log_tail "$d"; stop "$d" || true; exit 1; }

  # As much as possible runs at once (as in test/helpers/rgw.ts): the ceph CLI (python, the slowest
  # step) and radosgw-admin start before the daemons they talk to and wait for them; radosgw and
  # radosgw-admin both create the default zone and pools on a new cluster, either may win.
  timeout 30 ceph --connect-timeout 30 osd new "$osd_uuid" 0 >/dev/null 2>>"$d/setup.out" &
  local osd_new=$!
  timeout 30 ceph-mon --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" >>"$d/setup.out" 2>&1 || fail "ceph-mon --mkfs failed"
  spawn mon ceph-mon -c "$d/ceph.conf" -i a -f
  spawn rgw radosgw -c "$d/ceph.conf" -n "client.rgw.$name" -f
  timeout 60 radosgw-admin user create --uid tessera --display-name Tessera \
    --access-key "$access" --secret-key "$secret" >/dev/null 2>>"$d/setup.out" &
  local user_create=$!
  # --no-mon-config: without it ceph-osd --mkfs asks a monitor for its config (and waits 300 s).
  timeout 30 ceph-osd -i 0 --mkfs --no-mon-config --osd-uuid "$osd_uuid" >>"$d/setup.out" 2>&1 || fail "ceph-osd --mkfs failed"
  wait "$osd_new" || fail "ceph osd new failed"
  spawn osd ceph-osd -c "$d/ceph.conf" -i 0 -f
  wait "$user_create" || fail "radosgw-admin user create failed"

  # curl signs SigV4 but sends no x-amz-content-sha256, which RGW requires: add the empty body's hash.
  local empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  local endpoint=http://127.0.0.1:$rgw_port ok=0 deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 'aws:amz:us-east-1:s3' -H "x-amz-content-sha256: $empty_sha" \
          --user "$access:$secret" "$endpoint/")" = 200 ]; then ok=1; break; fi
    while read -r pid label; do kill -0 "$pid" 2>/dev/null || fail "$label (pid $pid) exited"; done <"$d/pids"
    sleep 0.1
  done
  [ "$ok" -eq 1 ] || fail "no S3 answer from $endpoint after 60 s"

  cat >"$d/s3.env" <<EOF
AWS_ENDPOINT_URL=$endpoint
AWS_ACCESS_KEY_ID=$access
AWS_SECRET_ACCESS_KEY=$secret
AWS_REGION=us-east-1
EOF
  echo "rgw.sh: ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms; pids $(cut -d' ' -f1 "$d/pids" | tr '\n' ' ')" >&2
  cat "$d/s3.env"
}

[ $# -ge 2 ] || usage
case $1 in
  start) [ $# -le 3 ] || usage; start "$2" "${3:-lab}" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
