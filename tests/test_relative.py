"""The report reads latency budgets as multiples of a reference timed in the same bench call."""

from edge_emnist.report import relative

REF = "lenet5-emnist-bymerge-fp32.tflite"


def _record(artifact, session, p90, accuracy=0.88, threads=1, dataset="emnist-bymerge", runtime="litert"):
    return {"artifact": artifact, "session": session, "target": "cpu:vm-amx", "batch": 1, "runtime": runtime,
            "settings": {"threads": threads, "xnnpack": True}, "latency": {"p90_ms": p90}, "accuracy": accuracy,
            "dataset": dataset}


def test_each_point_is_divided_by_the_reference_of_its_own_call():
    records = [_record(REF, "a", 0.020), _record(REF, "b", 0.040), _record(REF, "b", 0.030, threads=2)]
    beside = relative.Beside(relative.reference_latencies(records, REF))
    assert beside.ratio(_record("x.tflite", "a", 0.010)) == (0.5, 0.020)
    assert beside.ratio(_record("x.tflite", "b", 0.010)) == (0.25, 0.040)
    assert beside.ratio(_record("x.tflite", "b", 0.015, threads=2)) == (0.5, 0.030)
    assert beside.ratio(_record("x.tflite", "c", 0.010)) is None  # not measured beside it
    assert beside.ratio(_record("x.tflite", "a", 0.010, dataset="mnist")) is None  # another scale
    # the reference as timed in another runtime is not the reference
    assert not relative.reference_latencies([_record(REF, "a", 0.02, runtime="ort")], REF)


def test_budgets_pick_the_most_accurate_point_within_them():
    records = [_record(REF, "a", 0.020, accuracy=0.881), _record("fast.tflite", "a", 0.009, accuracy=0.870),
               _record("even.tflite", "a", 0.019, accuracy=0.885), _record("slow.onnx", "a", 0.080, accuracy=0.898),
               _record("elsewhere.tflite", "z", 0.001, accuracy=0.99)]
    beside = relative.Beside.of(records, REF)
    assert relative.best_within(records, beside, 0.5)["artifact"] == "fast.tflite"
    assert relative.best_within(records, beside, 1.0)["artifact"] == "even.tflite"
    assert relative.best_within(records, beside, 7.0)["artifact"] == "slow.onnx"
    text = "\n".join(relative.section(records, beside, REF, tiers=(0.25, 1.0)))
    assert "at most 0.25x: none of them" in text and "**even.tflite** (litert), accuracy 0.8850, 0.95x" in text
    assert "elsewhere.tflite" not in text and "3 of 5 points" in text
    assert relative.section([_record("x.tflite", "q", 0.01)], beside, REF) == []


def test_the_report_says_how_far_a_ratio_moved_between_calls():
    """One call's ratio is what a budget reads; every call that timed the same bytes beside the reference shows
    how much that ratio can be trusted (a 2-core VM moves it by more than a 0.5x budget's margin)."""
    calls = [("a", 0.020, 0.0100), ("b", 0.025, 0.0110), ("c", 0.020, 0.0096)]
    records = [r for session, ref, fast in calls
               for r in (_record(REF, session, ref), _record("fast.tflite", session, fast, accuracy=0.885))]
    records.append({**_record("fast.tflite", "d", 0.001), "artifact_sha256": "other bytes"})  # another file
    records.append({**_record("fast.tflite", "e", 0.020), "emulated": True})  # an emulator's time is no time
    beside = relative.Beside.of(iter(records), REF)  # one pass: a stream will do
    assert [round(x, 3) for x in beside.ratios(records[-3])] == [0.5, 0.44, 0.48]
    assert beside.references == relative.reference_latencies(records, REF)
    latest = records[5]
    text = "\n".join(relative.section([latest], beside, REF, tiers=(0.5,)))
    assert "**fast.tflite** (litert), accuracy 0.8850, 0.48x (0.44-0.50x in 3 calls)" in text  # the median
    assert "| 0.48 | 0.44-0.50x in 3 calls | 0.0200 | c |" in text
    records.append(_record("fast.tflite", "f", 0.0200 * 0.46, accuracy=0.885))
    records.append(_record(REF, "f", 0.0200))
    beside = relative.Beside.of(records, REF)  # a fourth call at 0.46x: one noisy call no longer decides
    assert abs(beside.typical(latest) - 0.47) < 1e-9  # median of 4 calls
    call_b = records[3]  # its own call read 0.44x: alone, that call would win a 0.45x budget
    assert relative.best_within([call_b], relative.Beside(beside.references), 0.45) is call_b
    assert relative.best_within([call_b], beside, 0.45) is None  # the median does not
    alone = "\n".join(relative.section([latest], relative.Beside(beside.references), REF, tiers=(0.5,)))
    assert "0.48x (1 call)" in alone
