#!/usr/bin/env bash
# Installs exactly the Debian 12 packages lpusim needs to build and test. Idempotent; run as root.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config
  libsystemc-dev libeigen3-dev libcli11-dev libfmt-dev catch2
  libonnx-dev libprotobuf-dev protobuf-compiler libyaml-cpp-dev nlohmann-json3-dev
  libonnx-testdata
  slurm-wlm munge                 # single-node Slurm for the sweep job-array test (tests/sweep)
  python3-matplotlib              # scripts/plot_sweep.py (tests/tutorial, docs/images)
  python3-torch python3-torchvision python3-onnx python3-numpy  # scripts/make_models.py (bench/bench_models: ResNet-50, BERT-base)
  clang-14 libclang-rt-14-dev     # sanitizer build and libFuzzer targets (scripts/sanitize.sh, scripts/fuzz.sh)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
