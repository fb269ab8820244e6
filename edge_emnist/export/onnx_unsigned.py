"""Store every 8-bit tensor of a quantized ONNX graph as uint8, so it gives the same answers on every CPU.

ONNX Runtime multiplies uint8 activations by int8 weights on x86 with `vpmaddubsw`, which adds each pair of
products into a saturating int16. On a CPU with AVX-512 VNNI (`vpdpbusd`) or on ARM (`sdot`/`udot`) the sums
are exact int32. So an int8 model with int8 weights scores differently by CPU: measured on an AVX2 host without
VNNI, 95.2% top-1 agreement with the float model for LeNet-5's int8 ONNX, 99.1% once its weights were uint8
(`python benchmarks/portable_int8.py`). uint8 x uint8 has no such shortcut: ONNX Runtime uses exact kernels for it
on every x86 CPU and on ARM (this is what its `session.x64quantprecision` option does at load time, in every
app that remembers to set it).

The rewrite is exact: an int8 value q with zero point z becomes q + 128 with zero point z + 128, which
dequantizes to the same real number, and a QuantizeLinear with a zero point of z + 128 in uint8 produces
exactly its int8 output plus 128 (the clipping bounds move with it). Scales, int32 biases and float tensors
are left as they are.
"""

from __future__ import annotations

import numpy as np

SHIFT = 128
# Quantized operators and the positions of their 8-bit (data, zero point) input pairs.
EIGHT_BIT_INPUTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "QuantizeLinear": ((None, 2),),  # output type follows the zero point
    "DequantizeLinear": ((0, 2),),
    "ConvInteger": ((0, 2), (1, 3)),
    "MatMulInteger": ((0, 2), (1, 3)),
}


def _shifted(init) -> None:
    from onnx import numpy_helper

    values = numpy_helper.to_array(init).astype(np.int16) + SHIFT
    init.CopyFrom(numpy_helper.from_array(values.astype(np.uint8), init.name))


def to_unsigned(model) -> int:
    """Rewrite `model` (an onnx.ModelProto) in place; returns how many int8 tensors became uint8.

    Raises ValueError if an int8 tensor is produced at run time where this pass cannot follow it (an int8
    value that is neither an initializer nor the output of a QuantizeLinear whose zero point it rewrites).
    """
    from onnx import TensorProto

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    rewritten: set[str] = set()

    def is_int8(name: str) -> bool:
        init = initializers.get(name)
        return init is not None and init.data_type == TensorProto.INT8

    for node in graph.node:
        for data, zero_point in EIGHT_BIT_INPUTS.get(node.op_type, ()):
            names = [node.input[i] for i in (data, zero_point) if i is not None and i < len(node.input)]
            for name in names:
                if is_int8(name) and name not in rewritten:
                    _shifted(initializers[name])
                    rewritten.add(name)
    leftover = [init.name for init in graph.initializer if init.data_type == TensorProto.INT8]
    if leftover:
        raise ValueError(f"int8 tensors outside quantize/dequantize pairs: {', '.join(leftover[:3])}")
    _retype_value_info(graph)
    return len(rewritten)


def _retype_value_info(graph) -> None:
    """Shape inference may have recorded int8 for the tensors between Q and DQ: they are uint8 now."""
    from onnx import TensorProto

    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        tensor = info.type.tensor_type
        if tensor.elem_type == TensorProto.INT8:
            tensor.elem_type = TensorProto.UINT8


def eight_bit_types(model) -> set[str]:
    """The element types of the model's 8-bit initializers ("int8", "uint8"): what a test checks."""
    from onnx import TensorProto

    names = {TensorProto.INT8: "int8", TensorProto.UINT8: "uint8"}
    return {names[init.data_type] for init in model.graph.initializer if init.data_type in names}
