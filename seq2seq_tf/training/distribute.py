"""tf.distribute glue for the training loop: which strategy, who writes, how batches split.

The loop in train.py is written once against `tf.distribute.Strategy`; this module
picks the strategy `train.strategy` names and answers the two questions a
multi-replica run adds: which process writes checkpoints and summaries (the
chief), and which rows of a global batch each replica trains on.
"""

from __future__ import annotations

import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """The tf.distribute strategy `train.strategy` names.

    default: one device. mirrored: every local GPU (or logical CPU device).
    multi_worker: MultiWorkerMirroredStrategy over the machines in TF_CONFIG.
    tpu: TPUStrategy on `tpu` (a name or grpc:// address; "" = the local TPU).
    """
    if name not in STRATEGIES:
        raise ValueError(f"train.strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "train.strategy=multi_worker needs TF_CONFIG (cluster and task) in the environment"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints and summaries (always, off multi-worker).

    The chief is the `chief` task, or worker 0 when the cluster has no chief task.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_scratch_dir(strategy: tf.distribute.Strategy, workdir: str) -> str:
    """Where a non-chief worker's share of a collective checkpoint save goes (then deleted)."""
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, "workers", f"{resolver.task_type}-{resolver.task_id}")


def split_across_replicas(strategy: tf.distribute.Strategy, batch: tuple) -> tuple:
    """Gives replica i of n the rows i, i + n, ... of the global batch (all of it on one).

    Every worker reads the same global batches (same seed), so a run on n replicas
    sees exactly the batches of a one-device run, and the input position lives in
    one ordinary, checkpointable iterator.
    """
    if strategy.num_replicas_in_sync == 1:
        return batch

    def rows(context, t):
        return t[context.replica_id_in_sync_group :: context.num_replicas_in_sync]

    return tuple(
        strategy.experimental_distribute_values_from_function(lambda c, t=t: rows(c, t))
        for t in batch
    )
