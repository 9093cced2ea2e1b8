#!/usr/bin/env bash
# torchrun wrapper for `babelmill pretrain train` on one node of a (multi-node) job.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 NPROC_PER_NODE=8 \
#     pretrain/launch/torchrun.sh --config configs/pretrain/8b.yaml --data DATA --save CKPT
# Every node runs this with its own NODE_RANK; the run resumes from --save if it holds a checkpoint.
# Single node (MASTER_ADDR unset): the rendezvous store and gloo listen on 127.0.0.1 only
# (babelmill.pretrain.torchrun_local binds the store's socket; torch's own binds all interfaces).
set -euo pipefail
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
NPROC_PER_NODE=${NPROC_PER_NODE:-$(python -c 'import torch; print(max(1, torch.cuda.device_count()))')}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export CUDA_DEVICE_MAX_CONNECTIONS=${CUDA_DEVICE_MAX_CONNECTIONS:-1}   # needed by TP comm overlap
exec "$PYTHON" -m babelmill.pretrain.torchrun_local \
  --nnodes "$NNODES" --node-rank "$NODE_RANK" --nproc-per-node "$NPROC_PER_NODE" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
  -m babelmill.pretrain.cli train "$@"
