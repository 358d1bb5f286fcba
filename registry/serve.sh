#!/usr/bin/env bash
# Start the atacdenoise MLflow registry (SQLite + local artifacts by default).
#
#   registry/serve.sh [WORKDIR] [extra 'atacdenoise registry serve' options]
#
# Examples:
#   registry/serve.sh ./mlflow --port 5000
#   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:8333 \
#     registry/serve.sh ./mlflow --artifacts s3://mlflow --backend postgresql://user:pass@host/mlflow
set -euo pipefail
workdir="${1:-./mlflow}"
shift || true
exec atacdenoise registry serve --workdir "$workdir" "$@"
