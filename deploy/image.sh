#!/usr/bin/env bash
# Build the attnwatch image with podman (make image) and, where no container registry is
# reachable, the Debian base it is built on (make image-base). Usage:
#
#   deploy/image.sh base    build $BASE_IMAGE from Debian packages with debootstrap, if missing
#   deploy/image.sh build   podman build deploy/Dockerfile as $IMAGE on $BASE_IMAGE
#
# Environment (the Makefile sets them): IMAGE (attnwatch:0.1.0), MODEL (the Dockerfile's
# MODEL argument: train, as deploy/compose.yaml builds it), BASE_IMAGE (empty: the
# Dockerfile's default, the official python image), DEBIAN_MIRROR, PYTHON (the host python
# whose pip settings the build borrows), CONTAINERS_CONF (deploy/podman/containers.conf).
#
# The host's pip settings (index, CA bundle, local wheel directory, constraints) reach the
# build's RUN steps as read-only volumes, never as image content: a pip.conf written from
# `pip config list`, given to pip through the PIP_CONFIG_FILE build argument, and every file
# or directory it names, all under /dev/attnwatch-build. Where the host pip has none of
# them, nothing is mounted.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-attnwatch:0.1.0}
BASE_IMAGE=${BASE_IMAGE:-}
MODEL=${MODEL:-train}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
WORK=${IMAGE_WORK:-var/image}
# Where the host's pip settings appear in the build's RUN steps: under /dev, a fresh tmpfs in
# each, so the mount points (empty files and directories that buildah creates on the
# root file system and keeps in the layer) never reach the image.
MOUNTS=/dev/attnwatch-build
PODMAN=(podman --runtime runc)

die() { echo "image.sh: $*" >&2; exit 1; }
command -v podman >/dev/null || die "podman is not installed: run \`make image-deps\`"
command -v runc >/dev/null || die "runc is not installed: run \`make image-deps\`"

# A Debian bookworm root file system with Python 3.11, venv and pip (what the Dockerfile's
# stages need of the official python image: `python`, `python -m venv`, useradd), imported
# as an image. Debian's python lives in /usr/bin, the official image's in /usr/local/bin;
# the Dockerfile uses neither path.
base() {
    [[ -n $BASE_IMAGE ]] || die "BASE_IMAGE is empty: nothing to build"
    if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
        echo "base image $BASE_IMAGE exists"
        return
    fi
    command -v debootstrap >/dev/null || die "debootstrap is not installed: run \`make image-deps\`"
    local rootfs="$WORK/rootfs"
    rm -rf "$rootfs" && mkdir -p "$rootfs"
    echo "debootstrap bookworm into $rootfs (from $DEBIAN_MIRROR)"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
        bookworm "$rootfs" "$DEBIAN_MIRROR"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -c . | "${PODMAN[@]}" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
        - "$BASE_IMAGE"
    rm -rf "$rootfs"
}

# `pip config list` as a pip.conf for the build (env settings first: they win on the host
# too), every absolute path in it moved under $MOUNTS. Writes $WORK/pip.conf; prints the
# host paths to mount at $MOUNTS/<path>, one a line (only those that exist).
host_pip() {
    mkdir -p "$WORK"
    "$PYTHON" - "$WORK/pip.conf" "$MOUNTS" <<'PY'
import os, re, subprocess, sys
conf_path, mounts = sys.argv[1:]
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                     capture_output=True, text=True, check=True).stdout
settings: dict[str, str] = {}
for line in out.splitlines():
    m = re.fullmatch(r"(?::env:|global|install)\.([a-z-]+)='(.*)'", line)
    if m and m[1] in {"cert", "find-links", "index-url", "extra-index-url", "constraint",
                      "trusted-host"}:
        settings.setdefault(m[1], m[2])
paths, conf = set(), {}
for key, value in settings.items():
    moved = []
    for token in value.split():
        scheme = "file://" if token.startswith("file://") else ""
        path = token.removeprefix(scheme).rstrip("/")
        if not path.startswith("/"):
            moved.append(token)
            continue
        if not os.path.exists(path):
            break
        # A local index's pages link to files beside it (/opt/pypi/simple -> ../files).
        paths.add(os.path.dirname(path) if key.endswith("index-url") else path)
        moved.append(scheme + mounts + path)
    else:
        conf[key] = " ".join(moved)
with open(conf_path, "w", encoding="utf-8") as file:
    file.write("[global]\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
print("\n".join(sorted(paths)))
PY
}

# The host pip's index (PyPI unless its config names another).
host_index() {
    "$PYTHON" -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple
}

build() {
    # --format docker: OCI images drop the Dockerfile's HEALTHCHECK.
    local args=(--format docker --network host --layers -f deploy/Dockerfile -t "$IMAGE"
                --build-arg "MODEL=$MODEL")
    [[ -z $BASE_IMAGE ]] || args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    local paths
    paths=$(host_pip)
    if [[ -s $WORK/pip.conf && $(wc -l < "$WORK/pip.conf") -gt 1 ]]; then
        args+=(--volume "$PWD/$WORK/pip.conf:$MOUNTS/pip.conf:ro"
               --build-arg "PIP_CONFIG_FILE=$MOUNTS/pip.conf")
        local path
        while IFS= read -r path; do
            [[ -z $path ]] || args+=(--volume "$path:$MOUNTS$path:ro")
        done <<< "$paths"
        # The CPU torch wheel lies in a mounted wheel directory: take it from there through
        # the host's own index (pip prefers 2.13.0+cpu from find-links over PyPI's 2.13.0),
        # so the PyTorch index need not be reachable.
        local dir
        while IFS= read -r dir; do
            if [[ -d $dir ]] && compgen -G "$dir/torch-$TORCH_VERSION+cpu-*.whl" >/dev/null; then
                args+=(--build-arg "TORCH_INDEX=$(host_index)")
                break
            fi
        done <<< "$paths"
    fi
    echo "+ podman --runtime runc build ${args[*]} ."
    "${PODMAN[@]}" build "${args[@]}" .
}

case ${1:-} in
    base) base ;;
    build) build ;;
    *) die "usage: deploy/image.sh base|build" ;;
esac
