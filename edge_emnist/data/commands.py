"""`edge-emnist data ...`: list, verify, download and look at datasets. The command group's handlers print what the
data stage (inspect, sanity, views, download) returns; cli.py mounts the group."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from edge_emnist.data.registry import DATASETS, DEFAULT_DATASET
from edge_emnist.options import positive_int


def _dataset(parser: argparse.ArgumentParser, default: str = DEFAULT_DATASET) -> None:
    parser.add_argument("--dataset", default=default, choices=list(DATASETS), metavar="NAME",
                        help=f"one of: {', '.join(DATASETS)} (default: {default})")


def cmd_data_list(args: argparse.Namespace) -> int:
    from edge_emnist.data.inspect import listing, search_root
    from edge_emnist.tables import text_table

    root = search_root(args.data_dir, args.cache_dir)
    print(f"looking in {root}")
    print(text_table(*listing(root, args.check)))
    return 0


def cmd_data_verify(args: argparse.Namespace) -> int:
    from edge_emnist.data.inspect import search_root, verify_all
    from edge_emnist.tables import text_table

    checks = verify_all(args.dataset, search_root(args.data_dir, args.cache_dir))
    print(text_table(["dataset", "file", "sha256", "status"],
                     [[c.dataset, c.file, (c.sha256 or "-")[:16], c.status] for c in checks]))
    bad = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(bad)} of {len(checks)} files verified" + (f", {len(bad)} FAILED" if bad else ""))
    return 1 if bad else 0


def _load(args: argparse.Namespace, splits: tuple[str, ...]):
    from edge_emnist.data.source import load_dataset

    return load_dataset(args.dataset, args.data_dir, args.cache_dir, splits=splits, download=not args.no_download)


def cmd_data_show(args: argparse.Namespace) -> int:
    import numpy as np

    from edge_emnist.data.viz import sample_grid

    dataset = _load(args, (args.split,))
    split = dataset.splits[args.split]
    pick = np.sort(np.random.default_rng(args.seed).choice(len(split), size=min(args.n, len(split)), replace=False))
    title = f"{dataset.spec.name} ({args.split}, {'official' if dataset.provenance.official else 'not official'})"
    out = sample_grid(split.images[pick], split.labels[pick], dataset.spec, args.output, title=title)
    print(f"wrote {out} ({len(pick)} {args.split} images of {dataset.spec.name})")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from edge_emnist.data.sanity import check_labels

    check = check_labels(_load(args, ("train", "test")), references=args.references, queries=args.queries)
    print(check.line())
    return 0 if check.ok else 1


def cmd_data_derive_letters(args: argparse.Namespace) -> int:
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.data.source import locate
    from edge_emnist.data.views import derive_letters

    source = locate(get_dataset(args.source), args.data_dir, args.cache_dir, download=not args.no_download)
    counts = derive_letters(source, args.out, args.source, balanced=not args.all_images)
    print(f"wrote emnist-letters to {args.out} from {args.source} in {source}: {counts['train']:,} train / "
          f"{counts['test']:,} test images; use it with --data-dir {args.out}")
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from edge_emnist.data.inspect import STATS_HEADERS, class_counts, stats_rows
    from edge_emnist.data.viz import class_histogram
    from edge_emnist.tables import text_table

    dataset = _load(args, ("train", "test"))
    counts = class_counts(dataset)
    rows = stats_rows(dataset, counts)
    print(text_table(STATS_HEADERS, rows))
    ratio = counts["train"].max() / max(counts["train"].min(), 1)
    print(f"{dataset.spec.name}: {counts['train'].sum():,} train / {counts['test'].sum():,} test images, "
          f"largest/smallest class {ratio:.1f}x, fingerprint {dataset.provenance.fingerprint[:12]}")
    if args.csv:
        from edge_emnist.io import atomic_path

        with atomic_path(args.csv) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([STATS_HEADERS, *rows])
        print(f"wrote {args.csv}")
    print(f"wrote {class_histogram(counts, dataset.spec, args.output)}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from edge_emnist.data import download
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.data.source import default_cache_dir, provenance

    spec = get_dataset(args.dataset)
    folder = download.download(spec, Path(args.cache_dir or default_cache_dir()) / spec.family.name,
                               mirror=args.mirror)
    prov = provenance(spec, folder)
    print(f"{spec.name}: {prov.counts['train']:,} train / {prov.counts['test']:,} test in {folder} "
          f"({'official, sha256 verified' if prov.official else 'NOT official'})")
    return 0


def data_commands(commands, command) -> None:
    """The `data` command group; `command` is the CLI's own helper (one look for every command, data options
    included)."""
    data = commands.add_parser("data", help="list, verify, download and look at datasets",
                               description="Datasets: EMNIST (six splits), MNIST and KMNIST.")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = command(sub, "list", cmd_data_list, "datasets, classes, counts, and whether present locally and official",
                 data=True)
    p.add_argument("--check", action="store_true",
                   help="also run `data check` on each present dataset: do its labels belong to its images?")
    p = command(sub, "verify", cmd_data_verify, "check every file's sha256 against the official release (or the "
                                                 "folder's SHA256SUMS for derived data)", data=True)
    p.add_argument("--dataset", default="all", choices=["all", *DATASETS], metavar="NAME",
                   help="a dataset name, or all (default)")
    p = command(sub, "show", cmd_data_show, "PNG grid of upright samples titled with their characters", data=True)
    _dataset(p)
    p.add_argument("-n", type=positive_int, default=64, help="number of images (default: 64)")
    p.add_argument("-o", "--output", type=Path, default=Path("grid.png"), help="PNG path (default: grid.png)")
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--seed", type=int, default=0, help="which random sample to show")
    p = command(sub, "stats", cmd_data_stats, "class histogram (PNG) and per-class table", data=True)
    _dataset(p)
    p.add_argument("-o", "--output", type=Path, default=Path("class-histogram.png"))
    p.add_argument("--csv", type=Path, help="also write the table as CSV")
    p = command(sub, "check", cmd_data_check, "do the labels belong to the images? (1-NN on pixels, seconds)",
                 "Checksums prove the files are the published ones, not that labels and images line up. This "
                 "classifies test images by their nearest train image; shuffled labels fall to frequency guessing. "
                 "Exit status 1 when the accuracy is under twice the guessing level.", data=True)
    _dataset(p)
    p.add_argument("--references", type=positive_int, default=5000, help="train images used (default: 5000)")
    p.add_argument("--queries", type=positive_int, default=1000, help="test images classified (default: 1000)")
    p = command(sub, "derive-letters", cmd_data_derive_letters, "write a letters view from bymerge's files (case "
                 "merged)", "The letters task (26 classes, upper and lower case merged) re-derived from a 47-class "
                 "view's images and labels: its digits dropped, a and A both become A. Balanced like the official "
                 "letters split (the first n images of every letter in file order, n the rarest letter's count) "
                 "unless --all-images. For local data without a usable letters view; the result is not the official "
                 "letters split, and its provenance says so.", data=True)
    p.add_argument("--source", default="emnist-bymerge", choices=["emnist-bymerge", "emnist-balanced"],
                   help="the view to derive from (default: emnist-bymerge)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the four letters files")
    p.add_argument("--all-images", action="store_true",
                   help="keep every letter image instead of a balanced subset (more images, unequal classes)")
    p = command(sub, "download", cmd_data_download, "download the official release into the cache, "
                                                     "sha256-verified")
    _dataset(p)
    p.add_argument("--cache-dir", metavar="DIR", help="download cache (default: ~/.cache/edge-emnist)")
    p.add_argument("--mirror", metavar="URL", help="base URL of a mirror laid out as <mirror>/<family>/<file> "
                                                   "(default: $EDGE_EMNIST_MIRROR, else the official hosts)")


