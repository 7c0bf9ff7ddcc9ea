# Shared by scripts/up.sh and scripts/test.sh: make sure the Debian packages and the Rust
# toolchain rkube needs are present, installing what is missing.

# Debian packages the build and the tests need:
#   protobuf-compiler  etcd-client's gRPC code generation
#   etcd-server        the etcd backend's tests and benchmark run a real etcd
#   pkg-config, gcc    crates that build C code (SQLite is compiled in)
#   libseccomp-dev     libcontainer (the native container runtime) links libseccomp
#   busybox-static     the busybox test image is built from its binary
#   docker-registry    image pulls are tested against a real registry on loopback
#   containerd, runc   the CRI client is tested against containerd's CRI plugin
RKUBE_PACKAGES="protobuf-compiler etcd-server pkg-config gcc libc6-dev ca-certificates libseccomp-dev busybox-static docker-registry containerd runc"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: '$*' needs root; run this script as root" >&2
    exit 1
  fi
}

ensure_packages() {
  local missing=""
  for p in $RKUBE_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "==> installing Debian packages:$missing"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "error: no Rust toolchain (cargo) found; install one with rustup (https://rustup.rs)" >&2
      exit 1
    fi
  fi
}
