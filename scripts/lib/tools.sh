# Shared by scripts/test and scripts/demo: installs what the project needs, idempotently.
# Source it, then call the ensure_* functions you need.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_DIR="${BGW_TOOLS_DIR:-$REPO_ROOT/.tools}"
export BGW_VENV="$TOOLS_DIR/venv"            # current awscli + boto3 (Smithy RPC v2 CBOR)
export BGW_VENV_JSON="$TOOLS_DIR/venv-json"  # botocore 1.43.45: the last one speaking AWS JSON 1.0 here
JSON_BOTOCORE_VERSION="1.43.45"

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: Go and govmomi for the vCenter simulator, tmux for console tests,
# python venv support, openssl for certificates, systemd for `systemd-analyze` (unit checks),
# lintian and qemu-utils for the Debian package and OVF descriptor checks, restic and zstd
# for the backup benchmark.
ensure_apt_packages() {
    local wanted=(golang-go golang-github-vmware-govmomi-dev python3-venv tmux openssl curl ca-certificates build-essential pkg-config systemd lintian qemu-utils restic zstd)
    local missing=()
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# The workspace's rust-version; Debian 12's own rustc (1.63) is too old, so Rust comes from rustup.
RUST_MIN_VERSION="1.85"

rust_is_recent_enough() {
    local v
    v="$(rustc --version 2>/dev/null | awk '{print $2}')" || return 1
    [ -n "$v" ] || return 1
    [ "$(printf '%s\n%s\n' "$RUST_MIN_VERSION" "${v%%-*}" | sort -V | head -n1)" = "$RUST_MIN_VERSION" ]
}

ensure_rust() {
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac
    fi
    if ! command -v cargo >/dev/null 2>&1 || ! rust_is_recent_enough; then
        log "installing Rust (stable, minimal profile) with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
            | sh -s -- -y --profile minimal --default-toolchain stable >/dev/null
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if command -v rustup >/dev/null 2>&1; then
        for component in rustfmt clippy; do
            rustup component list --installed 2>/dev/null | grep -q "^$component" \
                || { log "adding rustup component $component"; rustup component add "$component" >/dev/null; }
        done
    fi
}

python_for_venv() {
    # Prefer a python whose venv module works (Debian's needs python3-venv).
    for py in python3 /usr/bin/python3; do
        if "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then echo "$py"; return; fi
    done
    echo python3
}

ensure_venvs() {
    local py
    py="$(python_for_venv)"
    if [ ! -x "$BGW_VENV/bin/aws" ] || ! "$BGW_VENV/bin/python" -c 'import boto3' >/dev/null 2>&1; then
        log "creating $BGW_VENV with the current awscli and boto3"
        rm -rf "$BGW_VENV"
        "$py" -m venv "$BGW_VENV"
        "$BGW_VENV/bin/pip" install -q --upgrade pip >/dev/null
        "$BGW_VENV/bin/pip" install -q awscli boto3 cbor2 >/dev/null
    fi
    # pyvmomi: the reference point of the vsphere-client inventory benchmark.
    if ! "$BGW_VENV/bin/python" -c 'import pyVmomi' >/dev/null 2>&1; then
        log "installing pyvmomi into $BGW_VENV"
        "$BGW_VENV/bin/pip" install -q pyvmomi >/dev/null
    fi
    if ! "$BGW_VENV_JSON/bin/python" -c "import botocore,sys; sys.exit(botocore.__version__ != '$JSON_BOTOCORE_VERSION')" >/dev/null 2>&1; then
        log "creating $BGW_VENV_JSON with botocore $JSON_BOTOCORE_VERSION (AWS JSON 1.0)"
        rm -rf "$BGW_VENV_JSON"
        "$py" -m venv "$BGW_VENV_JSON"
        "$BGW_VENV_JSON/bin/pip" install -q --upgrade pip >/dev/null
        "$BGW_VENV_JSON/bin/pip" install -q "botocore==$JSON_BOTOCORE_VERSION" boto3 >/dev/null
    fi
}

# The vCenter simulator (tests/vcsim/main.go) built from Debian's govmomi in GOPATH mode.
# Cached as <target>/vcsim/<first 16 hex of the source's SHA-256>/vcsim, the same place the
# Rust test support looks; exports BGW_VCSIM_BIN.
ensure_vcsim() {
    local target="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
    local hash out
    hash="$(sha256sum "$REPO_ROOT/tests/vcsim/main.go" | cut -c1-16)"
    out="$target/vcsim/$hash/vcsim"
    if [ ! -x "$out" ]; then
        log "building the vCenter simulator (govmomi $(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null))"
        mkdir -p "$(dirname "$out")"
        (cd "$REPO_ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
            GOCACHE="${GOCACHE:-$target/vcsim/gocache}" go build -o "$out.partial-$$" ./tests/vcsim)
        mv "$out.partial-$$" "$out"
    fi
    export BGW_VCSIM_BIN="$out"
}

# A real S3 server for the S3 chunk-store tests: s3s-fs from crates.io, built once into
# $TOOLS_DIR/s3s-fs (0.14.1 is the newest that builds with the Rust here; its own build
# directory is removed afterwards). Exports BGW_S3S_FS_BIN.
S3S_FS_VERSION="0.14.1"
ensure_s3s_fs() {
    local root="$TOOLS_DIR/s3s-fs"
    local bin="$root/bin/s3s-fs"
    if [ ! -x "$bin" ] || [ "$(cat "$root/version" 2>/dev/null)" != "$S3S_FS_VERSION" ]; then
        log "building s3s-fs $S3S_FS_VERSION (the S3 server of the chunk-store tests)"
        local build="$TOOLS_DIR/s3s-fs-build"
        CARGO_TARGET_DIR="$build" cargo install --quiet --locked s3s-fs \
            --version "$S3S_FS_VERSION" --features binary --root "$root"
        echo "$S3S_FS_VERSION" >"$root/version"
        rm -rf "$build"
    fi
    export BGW_S3S_FS_BIN="$bin"
}
