#!/bin/sh
# Runs `candleflow "$@"`. With CANDLEFLOW_STATE_PER_HOST=1 each container keeps its table state in its
# own subdirectory of the (shared) state volume, so scaled replicas never open the same RocksDB files.
set -eu
if [ "${CANDLEFLOW_STATE_PER_HOST:-0}" = "1" ]; then
  CANDLEFLOW_DATA_DIR="${CANDLEFLOW_DATA_DIR:-/var/lib/candleflow/state}/$(hostname)"
  export CANDLEFLOW_DATA_DIR
fi
exec candleflow "$@"
