#!/bin/sh
# Install mta-pipeline with its `deploy` extra (the Docker and Kubernetes run launchers) into one
# Python environment, then check that the code location loads and the Dagster commands run.
# deploy/Dockerfile runs this script; so does mta_pipeline_tests/deploy/test_install.py, on a
# fresh venv.
#
# Usage: deploy/install.sh [PYTHON]
#   PYTHON  the interpreter of the environment to install into (e.g. /opt/venv/bin/python);
#           default: $MTA_INSTALL_PYTHON, else `python3` on PATH (the image's system Python).
# uv reads its usual settings (UV_INDEX_URL, UV_CACHE_DIR, ...) from the environment.
set -eu

python="${1:-${MTA_INSTALL_PYTHON:-python3}}"
project="$(cd "$(dirname "$0")/.." && pwd)"

# A regular (non-editable) install: the image keeps no source tree, so nothing may point at one.
# uv resolves and installs the ~150 packages with parallel downloads: about 20 s against pip's
# 2 minutes, which keeps the test suite (it runs this script on a fresh venv) short.
"$python" -m pip install --quiet "uv>=0.13,<0.14"
"$python" -m uv pip install --python "$python" "$project[deploy]"

# The commands the image runs: the code server and runs (dagster), the UI, the daemon, `mta`.
scripts="$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
for command in dagster dagster-webserver dagster-daemon mta; do
    if [ ! -x "$scripts/$command" ]; then
        echo "install.sh: $scripts/$command is missing after the install" >&2
        exit 1
    fi
done

# The code location imports from the installed package, not from the source folder.
cd /
"$python" -c "import mta_pipeline.definitions"
"$python" -c "import dagster_docker, dagster_k8s, dagster_postgres"
"$scripts/dagster" --version
"$scripts/dagster-webserver" --version
echo "install.sh: mta-pipeline installed into $("$python" -c 'import sys; print(sys.prefix)')"
