"""Where the time of one inference goes, operator by operator, at batch 1: the answer to "why is int8 LeNet-5
slower than float32 here?".

Two methods, one per runtime family, both measured on the machine that runs the runner:
- ONNX Runtime: its own profiler (`SessionOptions.enable_profiling`) on the optimized graph, the kernel time of
  every node averaged over the timed runs (the profiler counts whole microseconds, so the mean, not the median),
  with the execution provider that ran it (a CUDA session shows which nodes fell back to the CPU).
- LiteRT: the Python wheel exposes no op profiler, so every operator is cut out into a one-operator model (its
  weights kept, its activations as inputs) and timed alone in the same interpreter settings (XNNPACK or not);
  the record says whether XNNPACK took it or LiteRT's builtin kernel ran it. An operator on constants only
  (the DEQUANTIZE of float16 weights) runs once when the model is prepared: 0 ms, kernel "at init", and its
  result is a constant of the others' one-operator models, as in the whole model. Isolated times include one
  invoke's overhead each and miss cross-operator fusion, so their sum exceeds the whole model's time: compare
  operators with each other, and the whole with `total_ms`.

Plain Python over numpy and the runtimes: the runner ships it to devices.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    from edge_emnist.device.formats import RUNTIMES, resolve
    from edge_emnist.device.formats import settings as settings_of
    from edge_emnist.device.records import SCHEMA_VERSION
    from edge_emnist.device.runtimes import litert_interpreter, native_stderr_muted, open_ort
except ImportError:  # copied to a device beside the other RUNNER_FILES
    from formats import RUNTIMES, resolve  # type: ignore[no-redef]
    from formats import settings as settings_of  # type: ignore[no-redef]
    from records import SCHEMA_VERSION  # type: ignore[no-redef]
    from runtimes import litert_interpreter, native_stderr_muted, open_ort  # type: ignore[no-redef]


class ProfileUnavailable(RuntimeError):
    """This runtime has no way to time its operators here (the record says why)."""


def profile(path: Path, runtime: str, *, threads: int = 1, runs: int = 500, warmup: int = 50,
            xnnpack: bool = True) -> dict:
    """One `profile` record (without host and labels) for the artifact on `runtime` at batch 1."""
    row = RUNTIMES[runtime]
    if row.profiler is None:
        profiled = ", ".join(name for name, r in RUNTIMES.items() if r.profiler)
        raise ProfileUnavailable(f"{runtime} has no per-operator profiler here (profiled: {profiled})")
    method = resolve(row.profiler, globals(), "profiles")
    settings = settings_of(runtime, threads, xnnpack=xnnpack)
    operators, total_ms, how = method(Path(path), runtime, threads=threads, runs=runs, warmup=warmup, xnnpack=xnnpack)
    return {"schema": SCHEMA_VERSION, "kind": "profile", "artifact": Path(path).name, "runtime": runtime,
            "settings": settings, "batch": 1, "runs": runs, "method": how, "total_ms": total_ms,
            "operators_ms": float(sum(op["ms"] for op in operators)), "operators": operators}


def _input_like(shape, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """Random values of the input's type; a named (ONNX) or -1 (LiteRT) batch dimension becomes 1."""
    shape = [int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else 1 for d in shape]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)
    return rng.random(shape).astype(dtype)


def ort_operators(path: Path, runtime: str, *, threads: int, runs: int, warmup: int,
                  **_) -> tuple[list[dict], float, str]:
    with tempfile.TemporaryDirectory() as scratch:
        model = open_ort(path, RUNTIMES[runtime], threads=threads, profile_prefix=os.path.join(scratch, "profile"))
        x = _input_like(model.session.get_inputs()[0].shape, np.dtype(np.float32), np.random.default_rng(0))
        for _ in range(warmup + runs):
            model.run_raw(x)
        events = json.loads(Path(model.session.end_profiling()).read_text())
    timed = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[-runs:]
    start, whole = timed[0]["ts"], [e["dur"] for e in timed]
    nodes: dict[str, dict] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= start:
            args = event.get("args") or {}
            name = event["name"][: -len("_kernel_time")]
            node = nodes.setdefault(name, {"index": int(args.get("node_index", -1)), "name": name,
                                           "op": args.get("op_name", "?"), "provider": args.get("provider"),
                                           "us": []})
            node["us"].append(event["dur"])
    operators = [{**{k: v for k, v in node.items() if k != "us"}, "ms": float(np.mean(node["us"])) / 1e3}
                 for node in nodes.values()]
    operators.sort(key=lambda op: op["ms"], reverse=True)
    return operators, float(np.mean(whole)) / 1e3, "onnxruntime profiler, mean kernel time per node"


def placement(path: Path, runtime: str, threads: int = 1) -> dict:
    """Which execution provider ran each node of an ONNX Runtime session (a few profiled runs): on a GPU
    runtime, the nodes that fell back to the CPU, each one a copy to and from the GPU."""
    operators, _, _ = ort_operators(Path(path), runtime, threads=threads, runs=3, warmup=1)
    on_cpu = sorted(op["op"] for op in operators if op.get("provider") == "CPUExecutionProvider")
    return {"nodes": len(operators), "cpu_nodes": len(on_cpu), "cpu_ops": sorted(set(on_cpu)),
            "providers": sorted({op.get("provider") or "?" for op in operators})}


def _median_invoke_ms(interpreter, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        interpreter.invoke()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        interpreter.invoke()
        samples.append(time.perf_counter_ns() - started)
    return float(np.median(samples)) / 1e6


def _interpreter(content: bytes, threads: int, xnnpack: bool, rng: np.random.Generator, **options):
    """An interpreter on `content` with random inputs set, ready to invoke."""
    interpreter = litert_interpreter(threads=threads, xnnpack=xnnpack, model_content=content, **options)
    with native_stderr_muted():  # XNNPACK announces itself when the tensors are allocated
        interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _input_like(detail["shape"], np.dtype(detail["dtype"]), rng))
    return interpreter


def litert_operators(path: Path, runtime: str, *, threads: int, runs: int, warmup: int,
                     xnnpack: bool) -> tuple[list[dict], float, str]:
    from ai_edge_litert.tools import flatbuffer_utils

    rng = np.random.default_rng(0)
    content = bytearray(path.read_bytes())
    total_ms = _median_invoke_ms(_interpreter(bytes(content), threads, xnnpack, rng), runs, warmup)
    model = flatbuffer_utils.read_model_from_bytearray(content)
    if len(model.subgraphs) != 1:
        raise ProfileUnavailable(f"{path.name} has {len(model.subgraphs)} subgraphs (isolated timing takes one)")
    folded = _folded_at_init(model, bytes(content))
    operators = []
    for index in range(len(model.subgraphs[0].operators)):
        alone = flatbuffer_utils.read_model_from_bytearray(content)  # a fresh copy to cut down
        graph = alone.subgraphs[0]
        op = graph.operators[index]
        code = alone.operatorCodes[op.opcodeIndex]
        name = flatbuffer_utils.opcode_to_name(alone, op.opcodeIndex)
        for tensor in op.inputs:
            if tensor in folded:  # float16 weights as the runtime sees them after preparing: float32 constants
                alone.buffers.append(flatbuffer_utils.schema_fb.BufferT())
                alone.buffers[-1].data = np.frombuffer(folded[tensor].tobytes(), dtype=np.uint8)
                graph.tensors[tensor].buffer = len(alone.buffers) - 1
        graph.inputs = [t for t in op.inputs if t >= 0 and not _constant(alone, graph, t)]
        output = graph.tensors[op.outputs[0]]
        entry = {"index": index, "name": output.name.decode() if isinstance(output.name, bytes) else str(output.name),
                 "op": name, "builtin_code": int(code.builtinCode)}
        if not graph.inputs:  # constant in, constant out (float16 weights' DEQUANTIZE): done once when prepared
            operators.append({**entry, "kernel": "at init", "ms": 0.0})
            continue
        graph.outputs = list(op.outputs)
        graph.operators = [op]
        interpreter = _interpreter(bytes(flatbuffer_utils.convert_object_to_bytearray(alone)), threads, xnnpack, rng)
        kernels = [detail["op_name"] for detail in interpreter._get_ops_details()]  # a DELEGATE node: XNNPACK took it
        operators.append({**entry, "kernel": "XNNPACK" if "DELEGATE" in kernels else "builtin",
                          "ms": _median_invoke_ms(interpreter, runs, warmup)})
    operators.sort(key=lambda op: op["ms"], reverse=True)
    how = "each operator alone in a one-operator model, median invoke time" + (", XNNPACK on" if xnnpack else "")
    return operators, total_ms, how


def _folded_at_init(model, content: bytes) -> dict[int, np.ndarray]:
    """Values of the tensors that operators on constants only make (float16 weights dequantized): the runtime
    computes them once when preparing, so a one-operator model gets them as constants, as the whole model has."""
    graph = model.subgraphs[0]
    made = [t for op in graph.operators if not any(i >= 0 and not _constant(model, graph, i) for i in op.inputs)
            for t in op.outputs]
    if not made:
        return {}
    interpreter = _interpreter(content, 1, False, np.random.default_rng(0), experimental_preserve_all_tensors=True)
    interpreter.invoke()
    return {t: np.ascontiguousarray(interpreter.get_tensor(t)) for t in made}


def _constant(model, graph, tensor: int) -> bool:
    """A tensor with data in the file (weights, shapes): kept inside the one-operator model, not an input."""
    data = model.buffers[graph.tensors[tensor].buffer].data
    return data is not None and len(data) > 0

