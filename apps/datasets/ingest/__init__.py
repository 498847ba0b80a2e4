"""Image ingestion: an uploaded archive (or a derived version's changes) into canonical items.

Modules: ``run`` (one ingestion, start to finish), ``sources`` (the archive's entries and the
loose files), ``decoding`` (the pool of decoding processes), ``storing`` (pack files, whole
files), ``rows`` (the item rows: reuse of stored copies, the INSERT) and ``splits``. The names
below are the package's API.

Runs on a worker (cpu queue) inside the version's tenant scope; see
apps.datasets.services.dataset_version_ingest. The steps:

1. start over: an interrupted earlier attempt's item rows and pack files are deleted;
2. a derived version copies its parent's rows (same stored images), minus removals, with
   relabels applied;
3. new images are read from the archive (apps.datasets.archives) and the stored loose files,
   and decoded in LEPTON_INGEST_PROCESSES worker processes (apps.datasets.canonical: no ORM)
   into a canonical PNG, with a WebP thumbnail when the image is larger than a thumbnail. On
   local storage the worker processes write them themselves, one pack file per batch of
   images at orgs/<org>/packs/<version>/a<attempt>-<batch>.pack (creating thousands of small
   files costs the kernel more than decoding them), and send back only what the rows need:
   where each image lies in its pack. On an object store they send the bytes and this
   process stores each image whole, once per organization, at
   orgs/<org>/blobs/<sha[:2]>/<sha>.png (thumbnail orgs/<org>/thumbs/<sha>.webp);
4. exact duplicates are dropped (the first copy stays); an image the organization already
   holds in another version points at that copy, and a pack left with nothing in use is
   deleted; splits are assigned (stratified from the version's ratios and seed, or the
   manifest's split column; existing items keep theirs);
5. the rows, counts and the health report (apps.datasets.health) are written in one transaction.
"""

from apps.datasets.ingest.decoding import BATCH_BYTES, BATCH_IMAGES, PARALLEL_MIN_IMAGES
from apps.datasets.ingest.run import ingest_images
from apps.datasets.ingest.splits import (
    SPLIT_SEED,
    TEST_SHARE,
    VALIDATION_SHARE,
    assign_splits,
    split_ratios,
    split_sizes,
)

__all__ = [
    "BATCH_BYTES",
    "BATCH_IMAGES",
    "PARALLEL_MIN_IMAGES",
    "SPLIT_SEED",
    "TEST_SHARE",
    "VALIDATION_SHARE",
    "assign_splits",
    "ingest_images",
    "split_ratios",
    "split_sizes",
]
