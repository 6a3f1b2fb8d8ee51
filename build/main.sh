#!/usr/bin/env bash
# The README's first command: set up a fresh Debian 12 machine, then run the main job, the
# Model Builder-style sample: export Fashion-MNIST to image folders (once), train an S-DFP8
# ResNet-20 through the ML.NET pipeline, evaluate on the test folder and save model.zip.
# Extra arguments go to the sample (see samples/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash build/setup.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# libtorch's OpenMP threads spin while idle; on a shared 2-core machine that slowed training ~10x.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec dotnet run -c Release --project samples/ImageClassification -- "$@"
