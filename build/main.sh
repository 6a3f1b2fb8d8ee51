#!/usr/bin/env bash
# The README's first command: set up a fresh Debian 12 machine and run the main job.
# Extra arguments go to the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash build/setup.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
exec dotnet run -c Release --project test/Microsoft.ML.SDfp.Benchmarks -- layer "$@"
