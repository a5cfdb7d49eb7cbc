"""smevo.logging: TensorBoard read back, metrics.jsonl (and its resume truncation), console."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from smevo.logging import ConsoleSink, RunLogger, flatten_hparams


def metrics_of(generation: int) -> dict[str, float]:
    return {
        "fitness/best": 100.0 + generation,
        "fitness/mean": 50.0 + generation / 2,
        "fitness/median": 49.0,
        "progress/evaluations": 10 * generation,
        "progress/generation": generation,
        "perf/evals_per_s": 1234.5,
        "mutation/divergence_mean": 0.01 * generation,
    }


def read_events(run_dir) -> event_accumulator.EventAccumulator:
    guidance = dict.fromkeys(event_accumulator.DEFAULT_SIZE_GUIDANCE, 0)
    accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance=guidance)
    accumulator.Reload()
    return accumulator


def text_of(accumulator, tag: str) -> list[tuple[int, str]]:
    return [
        (event.step, tensor_util.make_ndarray(event.tensor_proto).item().decode())
        for event in accumulator.Tensors(tag)
    ]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --------------------------------------------------------------------------- TensorBoard


def test_tensorboard_scalars_histograms_text_and_hparams(tmp_path):
    hparams = {
        "seed": 0,
        "algorithm": {"population": 10, "name": "truncation"},
        "budget": {"generations": 3, "wall_time": None},
        "policy": {"options": {"hidden": [16, 16]}},
        "logging": {"quiet": True},
    }
    with RunLogger(tmp_path, quiet=True, total=3) as logger:
        logger.log_config("seed: 0\nalgorithm:\n  population: 10\n")
        for generation in (1, 2, 3):
            histograms = {"fitness/population": np.arange(10.0) + generation}
            if generation == 2:
                histograms["mutation/sensitivity"] = np.array([0.5, np.nan, np.inf, 2.0])
            logger.log(generation, metrics_of(generation), histograms)
        logger.log_event("solved at generation 3")
        logger.close(final_hparams=hparams)

    assert all(path.is_file() for path in tmp_path.iterdir()), "no stray hparams subfolder"
    events = read_events(tmp_path)
    tags = events.Tags()
    assert set(metrics_of(1)) <= set(tags["scalars"])
    best = events.Scalars("fitness/best")
    assert [(e.step, e.value) for e in best] == [(10, 101.0), (20, 102.0), (30, 103.0)]
    divergence = events.Scalars("mutation/divergence_mean")
    assert [e.value for e in divergence] == pytest.approx([0.01, 0.02, 0.03])

    assert set(tags["histograms"]) == {"fitness/population", "mutation/sensitivity"}
    population = events.Histograms("fitness/population")
    assert [h.step for h in population] == [10, 20, 30]
    assert population[0].histogram_value.num == 10
    assert population[0].histogram_value.min == 1.0
    sensitivity = events.Histograms("mutation/sensitivity")
    assert [(h.step, h.histogram_value.num) for h in sensitivity] == [(20, 2)]

    ((step, config_text),) = text_of(events, "config/text_summary")
    assert step == 0 and config_text.startswith("```yaml\nseed: 0\n")
    assert text_of(events, "events/text_summary") == [(30, "solved at generation 3")]

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = start.session_start_info.hparams
    assert values["seed"].number_value == 0
    assert values["algorithm.population"].number_value == 10
    assert values["algorithm.name"].string_value == "truncation"
    assert values["policy.options.hidden"].string_value == "[16, 16]"
    assert values["logging.quiet"].number_value == 1  # torch.add_hparams stores bools as 0/1
    assert "budget.wall_time" not in values
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metric_tags = {info.name.tag for info in experiment.experiment.metric_infos}
    assert "hparams/fitness/best" in metric_tags and "fitness/best" not in metric_tags
    assert [(e.step, e.value) for e in events.Scalars("hparams/fitness/best")] == [(30, 103.0)]


def test_x_axis_falls_back_to_the_generation(tmp_path):
    with RunLogger(tmp_path, quiet=True) as logger:
        logger.log(1, {"fitness/best": 1.0})
        logger.log(2, {"fitness/best": 2.0})
    assert [e.step for e in read_events(tmp_path).Scalars("fitness/best")] == [1, 2]


def test_non_finite_values_never_raise(tmp_path):
    with RunLogger(tmp_path, quiet=True) as logger:
        logger.log(
            1,
            {"fitness/best": math.nan, "fitness/mean": -math.inf, "progress/evaluations": 5},
            {"fitness/population": np.full(4, np.nan), "mutation/sensitivity": np.array([])},
        )
    events = read_events(tmp_path)
    assert math.isnan(events.Scalars("fitness/best")[0].value)
    assert events.Scalars("fitness/mean")[0].value == -math.inf
    assert events.Tags()["histograms"] == []
    assert read_jsonl(tmp_path / "metrics.jsonl") == [
        {"generation": 1, "fitness/best": None, "fitness/mean": None, "progress/evaluations": 5}
    ]


def test_a_metric_that_is_not_a_number_is_a_type_error(tmp_path):
    with (
        RunLogger(tmp_path, quiet=True) as logger,
        pytest.raises(TypeError, match="metric 'fitness/best': expected a number"),
    ):
        logger.log(1, {"fitness/best": "high"})


def test_flatten_hparams():
    nested = {"a": {"b": 1, "c": {"d": "x"}}, "e": None, "f": [1, 2], "g": True, "h": 0.5}
    assert flatten_hparams(nested) == {"a.b": 1, "a.c.d": "x", "f": "[1, 2]", "g": True, "h": 0.5}


# --------------------------------------------------------------------------- metrics.jsonl


def test_jsonl_has_one_json_object_per_generation(tmp_path):
    with RunLogger(tmp_path, quiet=True) as logger:
        for generation in range(1, 5):
            logger.log(generation, metrics_of(generation))
            lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
            assert len(lines) == generation, "each line is flushed as it is written"
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["generation"] for r in records] == [1, 2, 3, 4]
    assert records[2] == {"generation": 3, **metrics_of(3)}
    assert isinstance(records[2]["progress/evaluations"], int)


def test_resume_truncates_to_an_uninterrupted_run(tmp_path):
    uninterrupted, resumed = tmp_path / "a", tmp_path / "b"
    with RunLogger(uninterrupted, quiet=True) as logger:
        for generation in range(1, 7):
            logger.log(generation, metrics_of(generation))

    with RunLogger(resumed, quiet=True) as logger:  # checkpoint at 2, killed during 5
        for generation in range(1, 5):
            logger.log(generation, metrics_of(generation))
    with open(resumed / "metrics.jsonl", "a") as file:
        file.write('{"generation": 5, "fitness/be')
    with RunLogger(resumed, quiet=True, start_generation=2) as logger:
        assert [r["generation"] for r in logger.jsonl.records] == [1, 2]
        for generation in range(3, 7):
            logger.log(generation, metrics_of(generation))

    assert (resumed / "metrics.jsonl").read_bytes() == (
        uninterrupted / "metrics.jsonl"
    ).read_bytes()
    best = read_events(resumed).Scalars("fitness/best")
    assert [e.step for e in best] == [10, 20, 30, 40, 50, 60], "redone generations purged"


def test_resume_drops_a_corrupt_line_and_everything_after_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"generation": 1}\nnot json\n{"generation": 2}\n')
    with RunLogger(tmp_path, quiet=True, start_generation=5) as logger:
        assert logger.jsonl.records == [{"generation": 1}]
    assert path.read_text() == '{"generation": 1}\n'


# --------------------------------------------------------------------------- console


def test_console_plain_lines_when_not_a_terminal(tmp_path):
    stream = io.StringIO()
    with RunLogger(tmp_path, total=3, stream=stream) as logger:
        for generation in (1, 2, 3):
            logger.log(generation, metrics_of(generation))
        logger.log_event("solved at generation 3")
    out = stream.getvalue()
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert lines[0].startswith("gen 1/3 | best 101.00 | mean 50.50 | 1,234 evals/s")
    assert not any(line.startswith("gen 2/3") for line in lines), "throttled to one line per 2 s"
    assert lines[1].startswith("gen 3/3 | best 103.00")
    assert lines[2] == "solved at generation 3"
    assert lines[3].startswith("done: 3 generations in 0:0")
    assert lines[3].endswith(", 30 evaluations, best fitness 103.00 (generation 3)")


def test_console_shows_a_throttled_last_generation_on_close():
    stream = io.StringIO()
    console = ConsoleSink(stream, total=None)
    console.write(1, metrics_of(1))
    console.write(2, metrics_of(2))
    console.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" |")[0] for line in lines[:2]] == ["gen 1", "gen 2"]
    assert lines[2].startswith("done: 2 generations")


def test_console_redraws_one_line_on_a_terminal():
    stream = FakeTerminal()
    console = ConsoleSink(stream, total=4, tty_interval=0.0)
    for generation in (1, 2):
        console.write(generation, metrics_of(generation))
    console.event("checkpoint saved")
    console.write(4, metrics_of(4))
    console.close()
    out = stream.getvalue()
    assert out.count("\r") >= 4 and "gen 2/4 [##########----------]" in out
    assert "ETA" in out and "\r\x1b[Kcheckpoint saved\n" in out
    assert "gen 4/4 [####################]" in out
    assert out.endswith("best fitness 104.00 (generation 4)\n")


def test_quiet_writes_nothing(tmp_path):
    stream = io.StringIO()
    with RunLogger(tmp_path, quiet=True, total=2, stream=stream) as logger:
        logger.log(1, metrics_of(1))
        logger.log_event("hello")
    assert stream.getvalue() == ""


def test_close_is_idempotent(tmp_path):
    stream = io.StringIO()
    logger = RunLogger(tmp_path, stream=stream)
    logger.log(1, metrics_of(1))
    logger.close()
    logger.close()
    assert stream.getvalue().count("done:") == 1
