#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine for this repository: the Debian packages the project uses
# (Fashion-MNIST data, fonts for the plots, Open MPI for distributed training), then a NuGet restore. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

wanted=(dataset-fashion-mnist fontconfig fonts-dejavu-core openmpi-bin libopenmpi-dev)
missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "setup: the .NET 10 SDK is required (dotnet was not found on PATH)" >&2
  exit 1
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet restore Microsoft.ML.SDfp.sln --verbosity quiet
echo "setup: done"
