"""smevo.logging: TensorBoard read back, metrics.jsonl (and its resume truncation), console."""

from __future__ import annotations

import io
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from smevo import console as smevo_console
from smevo.config import Config
from smevo.console import ConsoleSink
from smevo.logging import RunLogger, flatten_hparams
from smevo.trainer import run_hparams


def metrics_of(generation: int) -> dict[str, float]:
    return {
        "fitness/best": 100.0 + generation,
        "fitness/mean": 50.0 + generation / 2,
        "fitness/median": 49.0,
        "fitness/champion": 90.0 + generation,
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
        "env": {"max_steps": None},
        "policy": {"options": {"hidden": [16, 16]}},
        "logging": {"quiet": True},
    }
    with RunLogger(tmp_path, quiet=True) as logger:
        logger.log_config("seed: 0\nalgorithm:\n  population: 10\n")
        logger.log_hparams(hparams, ["fitness/champion", "fitness/best"])
        for generation in (1, 2, 3):
            histograms = {"fitness/population": np.arange(10.0) + generation}
            if generation == 2:
                histograms["mutation/sensitivity"] = np.array([0.5, np.nan, np.inf, 2.0])
            logger.log(generation, metrics_of(generation), histograms)
        logger.log_event("solved at generation 3")

    events_files = [path for path in tmp_path.iterdir() if path.name != "metrics.jsonl"]
    assert len(events_files) == 1 and events_files[0].is_file(), "HParams in the run's own file"
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
    assert values["logging.quiet"].number_value == 1  # torch's hparams stores bools as 0/1
    assert "env.max_steps" not in values
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metric_tags = [info.name.tag for info in experiment.experiment.metric_infos]
    assert metric_tags == ["fitness/champion", "fitness/best"], "the curves' own tags"
    assert not [tag for tag in tags["scalars"] if tag.startswith("hparams")], "no copies"


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


# --------------------------------------------------------------------------- HParams


@pytest.mark.parametrize(
    ("algorithm", "applies", "does_not_apply"),
    [
        ("truncation", {"algorithm.parents": 4, "algorithm.elites": 1}, ["batch", "tournament"]),
        ("steady_state", {"algorithm.batch": 50, "algorithm.tournament": 5}, ["parents", "elites"]),
        ("hillclimb", {"algorithm.elite_episodes": 5}, ["population", "batch", "parents"]),
    ],
)
def test_hparams_are_what_shapes_the_search_and_applies(algorithm, applies, does_not_apply):
    config = Config()
    config.algorithm.name, config.algorithm.population = algorithm, 20
    config.mutation.options = {"weight_clip": 0.2}
    hparams = flatten_hparams(run_hparams(config))
    assert {key: hparams[key] for key in applies} == applies  # parents: a fifth of 20
    assert not {f"algorithm.{key}" for key in does_not_apply} & set(hparams)
    assert hparams["algorithm.name"] == algorithm
    assert hparams["env.id"] == "CartPole-v1" and hparams["mutation.name"] == "SM-G-SUM"
    assert hparams["mutation.magnitude"] == 0.1 and hparams["seed"] == 0
    assert hparams["policy.name"] == "mlp" and hparams["mutation.options.weight_clip"] == 0.2
    assert not [key for key in hparams if key.startswith(("budget", "logging", "evaluation"))]


# --------------------------------------------------------------------------- console


@pytest.fixture
def clock(monkeypatch):
    """The console's clock, moved by hand (``clock.now = 10``), so no test waits or times."""
    fake = SimpleNamespace(now=0.0)
    fake.monotonic = lambda: fake.now
    monkeypatch.setattr(smevo_console, "time", fake)
    return fake


def drawn(stream) -> list[str]:
    """The lines a terminal console drew, in order."""
    return [part.split("\x1b[K")[0] for part in stream.getvalue().split("\r")[1:]]


def test_console_plain_lines_when_not_a_terminal(tmp_path, clock):
    stream = io.StringIO()
    with RunLogger(tmp_path, budgets={"generations": 3}, stream=stream) as logger:
        for generation in (1, 2, 3):
            clock.now = generation
            logger.log(generation, metrics_of(generation))
        logger.log_event("solved at generation 3")
    out = stream.getvalue()
    assert "\r" not in out and "\x1b" not in out
    assert out.splitlines() == [
        "gen 1/3 | pop best 101.00 | mean 50.50 | champion 91.00 | 1,234 evals/s | ETA 0:02",
        # generation 2 came 1 s after 1: throttled to one line per 2 s; the last always shows
        "gen 3/3 | pop best 103.00 | mean 51.50 | champion 93.00 | 1,234 evals/s",
        "solved at generation 3",
        "done: 3 generations in 0:03, 30 evaluations; champion 93.00 (validated, generation 3); "
        "population best 103.00 (generation 3)",
    ]


def test_console_shows_a_throttled_last_generation_on_close(clock):
    stream = io.StringIO()
    console = ConsoleSink(stream)
    console.write(1, metrics_of(1))
    console.write(2, metrics_of(2))
    console.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" |")[0] for line in lines[:2]] == ["gen 1", "gen 2"]
    assert lines[2].startswith("done: 2 generations")


def test_console_redraws_one_line_on_a_terminal(monkeypatch, clock):
    monkeypatch.setenv("COLUMNS", "200")
    stream = FakeTerminal()
    console = ConsoleSink(stream, {"generations": 4}, tty_interval=0.0)
    for generation in (1, 2):
        console.write(generation, metrics_of(generation))
    console.event("checkpoint saved")
    console.write(4, metrics_of(4))
    console.close()
    out = stream.getvalue()
    assert out.count("\r") >= 4 and "gen 2/4 [#####-----]" in out
    assert "ETA" in out and "\r\x1b[Kcheckpoint saved\n" in out
    assert "gen 4/4 [##########]" in out
    assert out.endswith("; population best 104.00 (generation 4)\n")


@pytest.mark.parametrize("columns", [80, 200])
def test_progress_line_fits_the_terminal_and_keeps_the_eta(monkeypatch, clock, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    stream = FakeTerminal()
    console = ConsoleSink(stream, {"generations": 1000}, tty_interval=0.0)
    clock.now = 3600.0  # 120 generations an hour: 880 more take 7:20:00
    console.write(120, {
        "fitness/best": -123456.789, "fitness/mean": -234567.891,
        "fitness/champion": -123456.789, "perf/evals_per_s": 12345.6,
    })  # fmt: skip
    (line,) = drawn(stream)
    assert len(line) < columns, "the last column stays free: no wrap"
    assert line.startswith("gen 120/1000") and line.endswith(" | ETA 7:20:00")
    assert "pop best -123456.79" in line and "champion -123456.79" in line
    assert ("12,346 evals/s" in line) == ("mean -234567.89" in line) == (columns == 200)


@pytest.mark.parametrize(
    ("budgets", "metrics", "head", "eta"),
    [
        # evaluations run out long before generations: bar and ETA follow them
        ({"generations": 1000, "evaluations": 100}, {"progress/evaluations": 50},
         "gen 1/1000", "0:10"),
        # a --max-evals run (no generation budget) gets a bar too
        ({"generations": None, "evaluations": 100}, {"progress/evaluations": 50}, "gen 1", "0:10"),
        # wall time: 5 of 10 s used by the trainer's clock
        ({"generations": 1000, "wall_time": 10}, {"perf/wall_time": 5.0}, "gen 1/1000", "0:05"),
    ],
)
def test_bar_and_eta_follow_the_budget_that_ends_the_run_first(
    monkeypatch, clock, budgets, metrics, head, eta
):
    monkeypatch.setenv("COLUMNS", "200")
    stream = FakeTerminal()
    console = ConsoleSink(stream, budgets, tty_interval=0.0)
    clock.now = 10.0
    console.write(1, {"fitness/best": 1.0, **metrics})
    (line,) = drawn(stream)
    assert line.startswith(f"{head} [#####-----] | pop best 1.00") and line.endswith(f"ETA {eta}")


def test_a_resumed_console_remembers_the_champion_and_counts_this_session(tmp_path, clock):
    with RunLogger(tmp_path, quiet=True) as logger:
        for generation in (1, 2, 3):
            logger.log(generation, metrics_of(generation))
    stream = io.StringIO()
    with RunLogger(tmp_path, budgets={"generations": 6}, stream=stream,
                   start_generation=2) as logger:
        clock.now = 10.0
        logger.log(3, {**metrics_of(3), "fitness/champion": 92.0, "fitness/best": 90.0})
    first, summary = stream.getvalue().splitlines()
    assert first.endswith("| ETA 0:30"), "one generation in 10 s, three to go"
    assert summary == (
        "done: 1 generations in 0:10, 30 evaluations; champion 92.00 (validated, generation 2); "
        "population best 102.00 (generation 2)"
    )


def test_quiet_writes_nothing(tmp_path):
    stream = io.StringIO()
    with RunLogger(tmp_path, quiet=True, budgets={"generations": 2}, stream=stream) as logger:
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
