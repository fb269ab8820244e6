"""What `export` takes: quantization, formats, edge types, where the artifacts go. No TensorFlow here, so the
command line is built (and a bad value refused) before any heavy import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_emnist.device.cards import INPUTS
from edge_emnist.device.formats import FORMAT_ALIASES, FORMATS, QUANTIZATIONS, format_named
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.models.external import ORIENTATIONS, PIXELS  # an imported model's conventions
from edge_emnist.options import option, positive_int
from edge_emnist.workspace import USER_EXPORTS

IO_TYPES = tuple(sorted({t for f in FORMATS.values() for t in f.io_types}))  # edge types an int8 file may take


@dataclass
class ExportOptions:
    quantize: str = option("int8", choices=lambda: QUANTIZATIONS,
                           help="none = float32; fp16 weights; dynamic-range int8 weights; int8 = full integer")
    formats: tuple[str, ...] | str = option(tuple(FORMATS), flag="--format",
                                            choices=lambda: [*FORMATS, *FORMAT_ALIASES, "all"], type=str, shown="all",
                                            help="artifact formats (litert: TFLite's current name, same .tflite)")
    io_type: str = option("int8", flag="--io", choices=lambda: IO_TYPES,
                          help="TFLite int8 only: input/output type; uint8 takes raw pixels as they are")
    input: str = option("grey", choices=INPUTS,
                        help="grey: 28x28x1 as trained; rgb: 28x28x3 (camera frames, canvases) turned grey inside "
                             "the model (0.299 R + 0.587 G + 0.114 B): app-ready, what MediaPipe's Image Classifier "
                             "takes; with --quantize int8 --io uint8 it takes raw RGB pixels")
    calibration_size: int = option(500, help="train images used to calibrate int8 ranges")
    out_dir: Path = option(USER_EXPORTS, shown=f"{USER_EXPORTS}/ (your workspace; the shipped models are in exported/)",
                           help="where the artifacts and their cards go")
    eval_batch: int = option(256, help="images per runtime call in the parity check", cli=False)
    force: bool = option(False, help="replace an existing artifact that was made from other weights")
    check_on: tuple[str, ...] = option((), nargs="+", metavar="TARGET",
                                       help="also compare the answers under these emulated CPUs (edge-emnist targets), "
                                            "e.g. qemu-x86_64:haswell; the card lists every CPU the parity was checked "
                                            "on")
    # emulation is 10-100x slower than native
    check_images: int = option(2000, type=positive_int, help="test images per emulated check")
    # a model trained elsewhere (export FILE): what the file cannot say
    dataset: str | None = option(None, metavar="NAME", help="exporting a .keras/.h5/SavedModel trained elsewhere: "
                                                            "the dataset whose classes it answers")
    orientation: str = option("upright", choices=ORIENTATIONS, help="such a model learned upright images, or raw "
                                                                    "EMNIST files' transposed ones")
    pixels: str = option("unit", choices=PIXELS, help="such a model takes pixels in [0, 1] (unit) or 0..255 (byte)")

    def __post_init__(self) -> None:
        if isinstance(self.formats, str):  # the command line's one word
            self.formats = tuple(FORMATS) if self.formats == "all" else (self.formats,)
        self.formats = tuple(dict.fromkeys(format_named(f) for f in self.formats))
        self.check_on = tuple(self.check_on or ())
        self.out_dir = Path(self.out_dir)

    def validate(self, run) -> None:
        if self.quantize not in QUANTIZATIONS:
            raise EdgeEmnistError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise EdgeEmnistError(f"unknown format {unknown[0]!r}: choose from {', '.join(FORMATS)} or all")
        if self.io_type not in IO_TYPES:
            raise EdgeEmnistError(f"--io must be one of {', '.join(IO_TYPES)}")
        if self.input not in INPUTS:
            raise EdgeEmnistError(f"--input must be one of {', '.join(INPUTS)}")
        if self.calibration_size < 1:
            raise EdgeEmnistError("--calibration-size must be at least 1")
        from edge_emnist.targets.qemu import EMULATED_CPUS, missing

        for name in self.check_on:
            if name not in EMULATED_CPUS:
                raise EdgeEmnistError(f"--check-on: unknown target {name!r}: choose from {', '.join(EMULATED_CPUS)}")
            if missing(name):
                raise EdgeEmnistError(f"--check-on {name}: {missing(name)} (`edge-emnist targets --install {name}`)")
        if self.check_images < 1:
            raise EdgeEmnistError("--check-images must be at least 1")
        if run.qat and self.quantize != "int8":
            raise EdgeEmnistError(f"{run.path} was trained quantization-aware: export it with --quantize int8")
