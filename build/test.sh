#!/usr/bin/env bash
# Runs every test project. Exits non-zero on any failure, and ends with one line
# "tests: N passed, N failed, N skipped" summed over the projects.
set -euo pipefail
cd "$(dirname "$0")/.."
bash build/setup.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0
dotnet build Microsoft.ML.SDfp.sln -c Release --no-restore -v q -nologo || exit 1
for project in test/*.Tests/*.Tests.csproj; do
  name=$(basename "$project" .csproj)
  echo "=== $name"
  dotnet test "$project" -c Release --no-build --logger "trx;LogFileName=$name.trx" --results-directory "$results" || status=1
done

counter() { # sums one attribute of the <Counters> element over every .trx file
  cat "$results"/*.trx 2>/dev/null | grep -o "<Counters [^>]*" | grep -o " $1=\"[0-9]*\"" | grep -o "[0-9]*" | awk '{s+=$1} END {print s+0}'
}
echo "tests: $(counter passed) passed, $(( $(counter failed) + $(counter error) )) failed, $(counter notExecuted) skipped"
exit $status
