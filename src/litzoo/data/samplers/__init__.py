"""Batch samplers that group samples of similar length, shard themselves under DDP and resume mid-epoch.

Five samplers share one machinery (:class:`ShardedBatchSampler`):

- :class:`RandomBatchSampler` / :class:`SequentialBatchSampler` -- plain batches of
  ``batch_size`` over a (shuffled) index order: the default of every datamodule.
- :class:`FixedBucketSampler` -- GluonNLP's bucketing: samples go to the bucket with the
  smallest key that fits them; each bucket is cut into batches of its own batch size.
- :class:`SortedBucketSampler` -- GluonNLP's sort-within-chunks: chunks of ``mult * batch_size``
  samples are sorted by a key and cut into batches.
- :class:`TokenBudgetSampler` -- fairseq's ``batch_by_size``: samples sorted by length are
  packed greedily so a batch's padded size (``batch size x longest sample``) stays under
  ``max_tokens``.

Each sampler yields lists of dataset indices (use it as ``DataLoader(batch_sampler=...)``).

Determinism: the order of epoch ``e`` is a pure function of ``(seed, epoch)``: it comes from
``numpy.random.default_rng([seed, e])``. ``set_epoch(e)`` selects the epoch, as with
``DistributedSampler``; Lightning calls it each epoch (see :attr:`ShardedBatchSampler.sampler`).

Distributed training: every rank builds the same global list of batches, pads it to a multiple
of the world size by repeating batches from its start (or drops the tail with ``drop_last``),
and takes batches ``rank, rank + W, rank + 2W, ...``. So ranks see disjoint shares (apart from
the repeated batches) and all get the same number of batches, which DDP needs to not hang at
the end of an epoch. With ``even_split`` (used for evaluation) the largest batches are split in
two instead, until the count divides by the world size, so no sample is seen twice. World size
and rank are read from ``torch.distributed`` when the sampler is iterated, because Lightning
creates the process group after the datamodule is built. Lightning cannot inject its
``DistributedSampler`` into a batch sampler, so the Trainer must run with
``use_distributed_sampler=False`` when these samplers are used (docs/data_api.md); a
:class:`~litzoo.data.base.BaseDataModule` asks for it in ``trainer_kwargs()``.

Resuming: ``state_dict()`` records ``{epoch, seed, num_replicas, batches_yielded}``;
``load_state_dict()`` makes the next iteration skip the batches already yielded, so a run
resumed from a mid-epoch checkpoint continues with the batch that would have come next. A
stateful DataLoader (:func:`litzoo.data.loader.build_dataloader`) stores this state
in Lightning checkpoints.
"""

from litzoo.data.samplers.bucketing import FixedBucketSampler, SortedBucketSampler
from litzoo.data.samplers.buckets import (
    BucketScheme,
    ConstWidthBucket,
    ExpWidthBucket,
    LinearWidthBucket,
    resolve_bucket_scheme,
)
from litzoo.data.samplers.budget import TokenBudgetSampler
from litzoo.data.samplers.plain import RandomBatchSampler, SequentialBatchSampler
from litzoo.data.samplers.sharded import ShardedBatchSampler, distributed_world

__all__ = [
    "BucketScheme",
    "ConstWidthBucket",
    "LinearWidthBucket",
    "ExpWidthBucket",
    "resolve_bucket_scheme",
    "distributed_world",
    "ShardedBatchSampler",
    "RandomBatchSampler",
    "SequentialBatchSampler",
    "FixedBucketSampler",
    "SortedBucketSampler",
    "TokenBudgetSampler",
]
