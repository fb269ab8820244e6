"""TFLite metadata (the TFLITE_METADATA buffer MediaPipe Tasks and Android Studio's ML Model Binding read), written
with the flatbuffers package alone.

The schema is TensorFlow Lite Support's metadata_schema.fbs (file identifier "M001"); only the tables an image
classifier needs are built here, field by field in the schema's order (a field's slot is its position; a union
takes two: its type, then its value). The labels travel as an associated file: a zip appended to the model, as
TFLite Support's populator does, so LiteRT still loads the file and MediaPipe finds `labels.txt` in it.

MediaPipe's own writer would do this, but its releases pin numpy < 2 and protobuf < 5 while TensorFlow 2.21 needs
numpy 2 and protobuf >= 6.31: the two cannot share one environment (checked with mediapipe 0.10.21).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import flatbuffers

IDENTIFIER = b"M001"
METADATA_NAME = b"TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"  # nothing here needs a newer metadata parser
LABELS_FILE = "labels.txt"
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
COLOR_SPACE = {"rgb": 1, "grey": 2}  # ColorSpaceType
IMAGE_PROPERTIES = 2  # ContentProperties union: 1 FeatureProperties, 2 ImageProperties
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union


@dataclass
class ClassifierFacts:
    name: str
    description: str
    version: str
    author: str
    labels: list[str]
    channels: int  # 1 grey, 3 RGB
    size: int  # square input
    mean: list[float]  # per channel: the model takes (pixel - mean) / std
    std: list[float]
    value_range: tuple[int, int]  # of the raw pixels


class _Tables:
    """Small helpers over flatbuffers.Builder: a table is a list of (slot, adder) filled in slot order."""

    def __init__(self) -> None:
        self.b = flatbuffers.Builder(1024)

    def string(self, text: str) -> int:
        return self.b.CreateString(text)

    def offsets(self, items: list[int]) -> int:
        self.b.StartVector(4, len(items), 4)
        for item in reversed(items):
            self.b.PrependUOffsetTRelative(item)
        return self.b.EndVector()

    def floats(self, values: list[float]) -> int:
        self.b.StartVector(4, len(values), 4)
        for value in reversed(values):
            self.b.PrependFloat32(value)
        return self.b.EndVector()

    def table(self, slots: int, fields: list[tuple[int, str, object]]) -> int:
        """fields: (slot, kind, value) with kind offset | uint8 | uint32 | int32."""
        self.b.StartObject(slots)
        for slot, kind, value in fields:
            if kind == "offset":
                self.b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "uint8":
                self.b.PrependUint8Slot(slot, value, 0)
            elif kind == "uint32":
                self.b.PrependUint32Slot(slot, value, 0)
            elif kind == "int32":
                self.b.PrependInt32Slot(slot, value, 0)
        return self.b.EndObject()


def metadata_buffer(facts: ClassifierFacts) -> bytes:
    """The ModelMetadata flatbuffer of a one-input, one-output image classifier."""
    t = _Tables()
    # strings and vectors first: a table cannot be open while they are built
    labels = t.table(5, [(0, "offset", t.string(LABELS_FILE)),
                         (1, "offset", t.string("the class of each output, one per line, in output order")),
                         (2, "uint8", TENSOR_AXIS_LABELS)])
    size = t.table(2, [(0, "uint32", facts.size), (1, "uint32", facts.size)])
    image = t.table(2, [(0, "uint8", COLOR_SPACE["rgb" if facts.channels == 3 else "grey"]), (1, "offset", size)])
    value_range = t.table(2, [(0, "int32", facts.value_range[0]), (1, "int32", facts.value_range[1])])
    content = t.table(3, [(0, "uint8", IMAGE_PROPERTIES), (1, "offset", image), (2, "offset", value_range)])
    normalization = t.table(2, [(0, "offset", t.floats(facts.mean)), (1, "offset", t.floats(facts.std))])
    process_unit = t.table(2, [(0, "uint8", NORMALIZATION_OPTIONS), (1, "offset", normalization)])
    stats_max = t.floats([float(facts.value_range[1])] * facts.channels)
    stats_min = t.floats([float(facts.value_range[0])] * facts.channels)
    stats = t.table(2, [(0, "offset", stats_max), (1, "offset", stats_min)])
    input_name, input_text = t.string("image"), t.string(
        f"{facts.size}x{facts.size} {'RGB' if facts.channels == 3 else 'grey'} character, light strokes on a dark "
        "background, upright and centred as in (E)MNIST")
    input_units = t.offsets([process_unit])
    input_meta = t.table(7, [(0, "offset", input_name), (1, "offset", input_text), (3, "offset", content),
                             (4, "offset", input_units), (5, "offset", stats)])
    output_name, output_text = t.string("probability"), t.string("softmax probabilities over the labels")
    output_content = t.table(3, [(0, "uint8", 1), (1, "offset", t.table(0, []))])  # FeatureProperties
    output_stats = t.table(2, [(0, "offset", t.floats([1.0])), (1, "offset", t.floats([0.0]))])
    output_files = t.offsets([labels])
    output_meta = t.table(7, [(0, "offset", output_name), (1, "offset", output_text), (3, "offset", output_content),
                              (5, "offset", output_stats), (6, "offset", output_files)])
    inputs, outputs = t.offsets([input_meta]), t.offsets([output_meta])
    subgraph = t.table(10, [(2, "offset", inputs), (3, "offset", outputs)])
    name, description, version = t.string(facts.name), t.string(facts.description), t.string(facts.version)
    author, license_, parser = t.string(facts.author), t.string("Apache-2.0"), t.string(MIN_PARSER_VERSION)
    subgraphs = t.offsets([subgraph])
    root = t.table(8, [(0, "offset", name), (1, "offset", description), (2, "offset", version),
                       (3, "offset", subgraphs), (4, "offset", author), (5, "offset", license_),
                       (7, "offset", parser)])
    t.b.Finish(root, file_identifier=IDENTIFIER)
    return bytes(t.b.Output())


def embed(path: Path, facts: ClassifierFacts) -> None:
    """Rewrite `path` with the metadata buffer and the labels file appended (replacing earlier metadata)."""
    from tensorflow.lite.python import schema_py_generated as schema


    raw = _model_bytes(path.read_bytes())
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(raw, 0))
    data = list(metadata_buffer(facts))
    earlier = [m for m in (model.metadata or []) if m.name == METADATA_NAME]
    if earlier:  # exported before: its buffer takes the new metadata (buffer indices must not move)
        model.buffers[earlier[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(raw) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(LABELS_FILE, "\n".join(facts.labels) + "\n")
    path.write_bytes(out.getvalue())


def _model_bytes(data: bytes) -> bytes:
    """The flatbuffer without a zip of associated files behind it (a file exported before is re-embedded)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            first = min((info.header_offset for info in archive.infolist()), default=len(data))
            return data[:first]
    except zipfile.BadZipFile:
        return data


def read(path: Path) -> dict:
    """What the file says about itself (for tests and `bench` on a file without a card): name, labels, the
    normalization, the colour space."""
    from tensorflow.lite.python import schema_py_generated as schema

    data = path.read_bytes()
    model = schema.Model.GetRootAsModel(data, 0)
    found = None
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name() == METADATA_NAME:
            found = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
    if found is None:
        return {}
    labels = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            labels = archive.read(LABELS_FILE).decode().splitlines()
    except (zipfile.BadZipFile, KeyError):
        pass
    return {**_parse(found), "labels": labels}


def _parse(buf: bytes) -> dict:
    """The few fields `read` reports, decoded with flatbuffers' table reader (slots as in metadata_buffer)."""
    from flatbuffers.table import Table

    def table_at(table: Table, slot: int) -> Table | None:
        offset = table.Offset(4 + 2 * slot)
        return Table(table.Bytes, table.Indirect(offset + table.Pos)) if offset else None

    def string_at(table: Table, slot: int) -> str | None:
        offset = table.Offset(4 + 2 * slot)
        return table.String(offset + table.Pos).decode() if offset else None

    def vector_item(table: Table, slot: int, index: int) -> Table:
        offset = table.Offset(4 + 2 * slot)
        start = table.Vector(offset)
        return Table(table.Bytes, table.Indirect(start + 4 * index))

    def floats_at(table: Table, slot: int) -> list[float]:
        offset = table.Offset(4 + 2 * slot)
        if not offset:
            return []
        start, count = table.Vector(offset), table.VectorLen(offset)
        return [flatbuffers.encode.Get(flatbuffers.packer.float32, table.Bytes, start + 4 * i) for i in range(count)]

    if buf[4:8] != IDENTIFIER:
        return {}
    root = Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
    tensor = vector_item(vector_item(root, 3, 0), 2, 0)
    unit = vector_item(tensor, 4, 0)
    options = table_at(unit, 1)
    image = table_at(table_at(tensor, 3), 1)
    color = image.Get(flatbuffers.number_types.Uint8Flags, image.Offset(4) + image.Pos) if image.Offset(4) else 0
    return {"name": string_at(root, 0), "description": string_at(root, 1), "version": string_at(root, 2),
            "min_parser_version": string_at(root, 7), "mean": floats_at(options, 0), "std": floats_at(options, 1),
            "color_space": {v: k for k, v in COLOR_SPACE.items()}.get(color)}
