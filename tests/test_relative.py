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


def _pickable(artifact, session, p90, accuracy=0.88):
    """A bench record with every field the results files' schema asks for."""
    from edge_emnist.device.host import host_description

    return {**_record(artifact, session, p90, accuracy=accuracy), "schema": 2, "card": "ok", "size_bytes": 2048,
            "gzip_bytes": 1024, "host": host_description(), "memory": {"peak_rss_mb": 100.0},
            "latency": {"p50_ms": p90, "p90_ms": p90, "p99_ms": p90, "mean_ms": p90, "std_ms": 0.0, "runs": 10}}


def test_pick_reads_a_ratio_budget_as_the_report_does():
    """`pick --max-ratio` reads each file at the median of its ratios over the calls that timed it beside the
    reference, as the report's budget lines do, so the two never disagree about what fits."""
    import pytest

    from edge_emnist.errors import EdgeEmnistError
    from edge_emnist.report.pick import Constraints, pick

    calls = [("a", 0.020, 0.0190, 0.0260), ("b", 0.020, 0.0240, 0.0250), ("c", 0.020, 0.0188, 0.0300)]
    records = [r for session, ref, even, slow in calls
               for r in (_pickable(REF, session, ref, accuracy=0.881), _pickable("even.tflite", session, even, 0.895),
                         _pickable("slow.tflite", session, slow, 0.90))]
    records.append(_pickable("alone.tflite", "z", 0.001, accuracy=0.99))  # never timed beside the reference
    chosen, why = pick(records, "cpu", Constraints(max_ratio=1.0))
    # even.tflite's latest call read 0.94x, its median 0.95x (0.94-1.20x): it fits; the latest call alone decides
    # nothing, the median does
    assert chosen["artifact"] == "even.tflite"
    assert "0.95x the reference (median of 3 calls, 0.94-1.20x)" in why
    assert "rejected alone.tflite on litert (1 thread(s)): never timed beside the reference" in why
    assert "rejected slow.tflite on litert (1 thread(s)): 1.30x the reference > 1x" in why
    assert pick(records, "cpu", Constraints(max_ratio=1.5))[0]["artifact"] == "slow.tflite"
    others = [r for r in records if r["artifact"] != "even.tflite"]
    assert pick(others, "cpu", Constraints(max_ratio=1.0))[0]["artifact"] == REF  # the reference is 1x of itself
    with pytest.raises(EdgeEmnistError, match="nothing measured on cpu meets the constraints; closest: even.tflite"):
        pick(records, "cpu", Constraints(max_ratio=0.5))
    # another reference: the ratios are to it
    chosen, _ = pick(records, "cpu", Constraints(max_ratio=1.0), beside=relative.Beside.of(records, "slow.tflite"))
    assert chosen["artifact"] == "slow.tflite"
    assert "CPU models" not in why  # one CPU model (none named): nothing pooled
    for record in records:  # calls a and b on one CPU model, c on another: pick says its medians pool them
        record["host"] = {**record["host"], "cpu": "Xeon" if record["session"] == "c" else "EPYC"}
    why = pick(records, "cpu", Constraints(max_ratio=1.0))[1]
    assert "cpu:vm-amx's calls ran on 2 CPU models (EPYC: 2, Xeon: 1); the medians pool them" in why


def test_pick_command_reads_every_call_not_only_the_latest(tmp_path, capsys):
    """The command loads the latest record per setting for the choice, and every call for the ratios."""
    import json

    import pytest

    from edge_emnist.cli import main

    calls = [("a", 0.020, 0.0190), ("b", 0.020, 0.0240), ("c", 0.020, 0.0188)]
    records = [r for session, ref, even in calls
               for r in (_pickable(REF, session, ref), _pickable("even.tflite", session, even, 0.895))]
    results = tmp_path / "bench.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    for name in (REF, "even.tflite"):
        (tmp_path / name).write_bytes(b"not read: the records carry no sha256")
    assert main(["pick", "--results", str(results), "--target", "cpu:vm-amx", "--exported", str(tmp_path),
                 "--max-ratio", "1"]) == 0
    out = capsys.readouterr().out
    assert "picked even.tflite" in out and "0.95x the reference (median of 3 calls, 0.94-1.20x)" in out
    assert main(["pick", "--results", str(results), "--target", "cpu:vm-amx", "--exported", str(tmp_path),
                 "--max-ratio", "0.5"]) == 2
    assert "nothing measured on cpu:vm-amx meets the constraints" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # not a ratio: argparse's one line
        main(["pick", "--results", str(results), "--max-ratio", "0"])
    assert "--max-ratio: must be a positive finite number, got 0" in capsys.readouterr().err


def test_a_target_measured_on_two_cpu_models_reads_the_budgets_on_each():
    """One ISA tier, two CPUs: the pooled median can put a file just over a budget that it meets on one CPU and
    misses on the other; the section says so per CPU model instead of hiding it in the pool."""
    def on(cpu, artifact, session, p90, accuracy=0.88):
        return {**_record(artifact, session, p90, accuracy), "host": {"cpu": cpu}}

    records = []
    for session, ratio in (("a1", 1.10), ("a2", 1.20), ("a3", 1.05)):  # on the EPYC the file is over 1x
        records += [on("AMD EPYC", REF, session, 0.020), on("AMD EPYC", "f2.tflite", session, 0.020 * ratio, 0.896),
                    on("AMD EPYC", "int8.tflite", session, 0.020 * 0.45, 0.894)]
    for session, ratio in (("x1", 0.97), ("x2", 0.95)):  # on the Xeon it is under
        records += [on("Xeon", REF, session, 0.030), on("Xeon", "f2.tflite", session, 0.030 * ratio, 0.896)]
    beside = relative.Beside.of(records, REF)
    assert set(beside.by_cpu) == {"AMD EPYC", "Xeon"}
    latest = [records[-1], records[-2], records[8]]  # f2 and the reference from the Xeon, int8 from the EPYC
    text = "\n".join(relative.section(latest, beside, REF, tiers=(0.5, 1.0)))
    assert "| AMD EPYC | 3 | int8.tflite (litert), 0.8940 at 0.45x (0.45-0.45x in 3 calls) | int8.tflite" in text
    assert "| Xeon | 2 | none | f2.tflite (litert), 0.8960 at 0.96x (0.95-0.97x in 2 calls) |" in text
    one_cpu = relative.Beside.of([r for r in records if r["host"]["cpu"] == "Xeon"], REF)
    assert "CPU model" not in "\n".join(relative.section(latest[:2], one_cpu, REF))  # one model: no breakdown
