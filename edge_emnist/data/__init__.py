"""Datasets: registry, IDX files, local folders and official downloads, splits, tf.data pipelines.

`edge_emnist.data.batches` imports TensorFlow; nothing else here does, so `edge-emnist data list` is quick.
"""

from edge_emnist.data.registry import DATASETS, DatasetSpec, get_dataset
from edge_emnist.data.source import Dataset, Provenance, Split, load_dataset, locate
from edge_emnist.data.split import stratified_split

__all__ = [
    "DATASETS", "DatasetSpec", "get_dataset",
    "Dataset", "Provenance", "Split", "load_dataset", "locate",
    "stratified_split",
]
