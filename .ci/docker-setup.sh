#!/usr/bin/env bash
# Docker for CI: a running engine and the fake's image, built without Docker Hub.
#
#   .ci/docker-setup.sh            (as root, from any directory)
#
# This machine reaches only PyPI and Debian's archive: no Docker Hub, and a
# container reaches no package index. So, every step skipped when already done:
#   1. install Debian's docker.io (and debootstrap) when dockerd is missing;
#   2. start dockerd when no engine answers, and wait for it (bounded);
#   3. the base image $FAKE_REGISTRY_BASE_IMAGE: debootstrap a minimal Debian
#      bookworm with python3 + python3-venv, then docker import it;
#   4. a wheelhouse on the host: the project's wheel plus every dependency's,
#      downloaded for the base image's Python, ABI and glibc;
#   5. docker build of ./Dockerfile with --build-arg BASE_IMAGE and WHEELHOUSE,
#      tagged $FAKE_REGISTRY_IMAGE.
# Caches live in build/ci-docker/ (the wheelhouse) and in Docker's image store
# (the base image), so a rerun on the same machine takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${FAKE_REGISTRY_IMAGE:-aio-registry-fake:ci}
BASE=${FAKE_REGISTRY_BASE_IMAGE:-aio-registry-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=build/ci-docker
WHEELHOUSE=$CACHE/wheelhouse
DOCKERD_WAIT=60  # seconds

say() { printf '[docker-setup] %s\n' "$*"; }
mkdir -p "$CACHE"

# 1. The engine's packages.
if ! command -v dockerd > /dev/null || ! command -v docker > /dev/null \
    || ! command -v debootstrap > /dev/null; then
    say "installing docker.io and debootstrap (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q docker.io debootstrap
fi

# 2. A running engine.
if ! docker info > /dev/null 2>&1; then
    say "starting dockerd (log: $CACHE/dockerd.log)"
    nohup dockerd < /dev/null > "$CACHE/dockerd.log" 2>&1 &
    for _ in $(seq "$DOCKERD_WAIT"); do
        docker info > /dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info > /dev/null 2>&1; then
        say "dockerd did not answer within ${DOCKERD_WAIT} s; its log ends:"
        tail -n 30 "$CACHE/dockerd.log" >&2
        exit 1
    fi
fi
say "engine: $(docker version --format '{{.Server.Version}}')"

# 3. The base image.
if docker image inspect "$BASE" > /dev/null 2>&1; then
    say "base image $BASE: cached"
else
    say "base image $BASE: debootstrap bookworm from $MIRROR"
    rootfs=$(mktemp -d /tmp/aio-registry-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv \
        bookworm "$rootfs" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'CMD ["python3"]' - "$BASE" > /dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi

# 4. The wheelhouse, for the Python inside the base image.
# pip does not widen a --platform manylinux_2_36 to the older manylinux tags most
# wheels carry, so the base image's Python lists every tag its glibc accepts.
read -r py_version py_abi platforms < <(docker run --rm "$BASE" python3 -c '
import platform, sys
major, minor = (int(x) for x in platform.libc_ver()[1].split(".")[:2])
arch = platform.machine()
tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
tags += [f"manylinux{t}_{arch}" for t in ("2014", "2010", "1")]
print(f"{sys.version_info[0]}.{sys.version_info[1]}",
      f"cp{sys.version_info[0]}{sys.version_info[1]}", ",".join(tags))')
[ -n "${platforms:-}" ] || { say "cannot run python3 in $BASE"; exit 1; }
say "wheelhouse $WHEELHOUSE for Python $py_version ($py_abi, ${platforms%%,*})"
make --no-print-directory .venv/.installed  # the project's venv: its pip builds and downloads
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
mkdir -p "$WHEELHOUSE"
rm -f "$WHEELHOUSE"/aio_registry_sdk-*.whl
rm -rf build/lib build/bdist.*  # setuptools reuses them: stale modules would ship
"${PIP[@]}" wheel --no-deps --wheel-dir "$WHEELHOUSE" .
project_wheel=$(ls "$WHEELHOUSE"/aio_registry_sdk-*.whl)
platform_flags=()
for tag in ${platforms//,/ }; do platform_flags+=(--platform "$tag"); done
"${PIP[@]}" download --dest "$WHEELHOUSE" --only-binary=:all: \
    --python-version "$py_version" --implementation cp --abi "$py_abi" "${platform_flags[@]}" \
    "$project_wheel[testing]"

# 5. The image.
old=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2> /dev/null || true)
say "building $IMAGE from ./Dockerfile (BASE_IMAGE=$BASE)"
DOCKER_BUILDKIT=0 docker build --force-rm \
    --build-arg "BASE_IMAGE=$BASE" --build-arg "WHEELHOUSE=$WHEELHOUSE" --tag "$IMAGE" .
# No dangling leftovers: the build stage (its layers change with every wheel, so
# they are no cache worth keeping) and the image this tag named before.
docker image prune --force --filter "label=org.opencontainers.image.title=aio-registry-fake-build" \
    > /dev/null
new=$(docker image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old" ] && [ "$old" != "$new" ]; then
    docker image rm "$old" > /dev/null 2>&1 || true  # still used by a container: kept
fi
say "image $IMAGE: $new"
