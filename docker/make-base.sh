#!/usr/bin/env bash
# Make a stand-in for the CPU image's base (python:3.11-slim-bookworm) from Debian's own packages,
# for machines where Docker Hub cannot be reached. docker/build.sh runs this only when the base
# image is missing; where Docker Hub works the real base is pulled and this never runs.
#
#   docker/make-base.sh [TAG]      # default: python:3.11-slim-bookworm
#
# What it makes: a debootstrap'ed Debian bookworm (minbase) with python3.11, its venv module
# and pip, ca-certificates and apt sources for bookworm, bookworm-updates and bookworm-security
# (as the real image has), imported with `docker import` under TAG. Python is /usr/bin/python3
# here and /usr/local/bin/python3 in the real image; Dockerfile.cpu only uses `python3`.
# Needs root and debootstrap (apt-get install debootstrap). DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

tag="${1:-python:3.11-slim-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

command -v docker >/dev/null || { echo "$0: docker is not installed" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "$0: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "$0: debootstrap needs root" >&2; exit 1; }

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/sagemaker-base.XXXXXX")
# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() { rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT

echo "== debootstrap bookworm into $rootfs (mirror $mirror)" >&2
debootstrap --variant=minbase \
  --include=python3.11,python3.11-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" "$mirror" >&2

# The apt sources the real image has (deb822), instead of debootstrap's one-line sources.list.
rm -f "$rootfs/etc/apt/sources.list"
cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Small, as a slim image: no package lists, caches, docs or man pages.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/var/log/*.log
ln -sf python3 "$rootfs/usr/bin/python"

echo "== importing it as $tag" >&2
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "stand-in for $tag: Debian bookworm + python3.11 (docker/make-base.sh)" \
  - "$tag" >/dev/null
docker run --rm --network none "$tag" python3 -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "$0: the imported $tag has no working Python 3.11" >&2; exit 1; }
echo "$tag"
