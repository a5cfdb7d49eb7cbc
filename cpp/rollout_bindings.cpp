// pybind11 binding of the fused rollouts: smevo.evaluation._rollout.
//
// smevo/evaluation/native.py builds every call (rollout.py steps MlpForward); the checks here
// guard the memory the C++ code touches (shapes and sizes), then the rollout runs with the GIL
// released. The maze argument is smevo_envs._maze.Maze: pybind11 shares registered types
// between extension modules, so the maze and its breadcrumb map are built once, by smevo_envs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnn.hpp"
#include "maze.hpp"
#include "rollout.hpp"

namespace py = pybind11;
using smevo::rollout::Activation;
using smevo::rollout::CnnForward;
using smevo::rollout::CnnSpec;
using smevo::rollout::ConvSpec;
using smevo::rollout::MlpForward;
using smevo::rollout::MlpSpec;
using smevo::rollout::RolloutInput;
using smevo::rollout::RolloutOutput;

namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

// The activations the C++ forward applies, by the names smevo.policies gives them; exposed
// to Python as ACTIVATIONS, so that this map is the one list of them.
const std::map<std::string, Activation>& activations() {
  static const std::map<std::string, Activation> kByName{
      {"linear", Activation::kLinear}, {"relu", Activation::kRelu},
      {"tanh", Activation::kTanh},     {"sigmoid", Activation::kSigmoid},
      {"selu", Activation::kSelu}};
  return kByName;
}

Activation activation(const std::string& name) {
  const auto found = activations().find(name);
  if (found == activations().end()) throw std::invalid_argument("unsupported activation " + name);
  return found->second;
}

py::tuple activation_names() {
  py::list names;
  for (const auto& entry : activations()) names.append(entry.first);
  return py::tuple(names);
}

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

MlpSpec checked_mlp(const std::vector<int>& sizes, const std::string& hidden,
                    const std::string& output) {
  require(sizes.size() >= 2, "sizes needs an input and an output size");
  for (int size : sizes) require(size >= 1, "layer sizes must be positive");
  return MlpSpec{sizes, activation(hidden), activation(output)};
}

// One lockstep step of a forward (MlpForward or CnnForward): row r of `inputs` [G * episodes,
// in] by row r / episodes of `genomes` (`name`: as the forward reads them, `genome_size` values
// a row), `out` outputs a row; the arrays' shapes checked against each other.
template <class Forward, class Genome>
Array<float> step_rows(Forward& forward, const char* name, const Array<Genome>& genomes,
                       std::size_t genome_size, std::size_t in, std::size_t out,
                       std::size_t episodes, const Array<double>& inputs,
                       const Array<bool>& active) {
  require(genomes.ndim() == 2 && genomes.shape(1) == static_cast<py::ssize_t>(genome_size),
          std::string(name) + " must have shape (groups, " + std::to_string(genome_size) + ")");
  require(episodes >= 1, "episodes must be >= 1");
  const py::ssize_t rows = genomes.shape(0) * static_cast<py::ssize_t>(episodes);
  require(inputs.ndim() == 2 && inputs.shape(0) == rows &&
              inputs.shape(1) == static_cast<py::ssize_t>(in),
          "inputs must have shape (groups * episodes, " + std::to_string(in) + ")");
  require(active.ndim() == 1 && active.shape(0) == rows, "active must have one flag per row");
  Array<float> outputs({rows, static_cast<py::ssize_t>(out)});
  {
    py::gil_scoped_release release;
    forward(genomes.data(), episodes, static_cast<std::size_t>(rows), inputs.data(),
            reinterpret_cast<const std::uint8_t*>(active.data()), outputs.mutable_data());
  }
  return outputs;
}

Array<float> mlp_rows(MlpForward& forward, const Array<double>& genomes, std::size_t episodes,
                      const Array<double>& inputs, const Array<bool>& active) {
  const MlpSpec& mlp = forward.spec();
  return step_rows(forward, "genomes", genomes, mlp.num_params(),
                   static_cast<std::size_t>(mlp.sizes.front()),
                   static_cast<std::size_t>(mlp.sizes.back()), episodes, inputs, active);
}

// `genomes` [G, params] as a forward that runs many steps on them reads them: each row laid out
// by `lay_out` (`prepared` values a row).
template <class In, class Out, class LayOut>
Array<Out> prepared_rows(const Array<In>& genomes, std::size_t params, std::size_t prepared,
                         LayOut lay_out) {
  require(genomes.ndim() == 2 && genomes.shape(1) == static_cast<py::ssize_t>(params),
          "genomes must have shape (groups, " + std::to_string(params) + ")");
  Array<Out> rows({genomes.shape(0), static_cast<py::ssize_t>(prepared)});
  for (py::ssize_t g = 0; g < genomes.shape(0); ++g) {
    lay_out(genomes.data() + g * params, rows.mutable_data() + g * prepared);
  }
  return rows;
}

CnnSpec checked_cnn(const std::vector<int>& frame, bool channels_last, double scale,
                    const std::vector<std::vector<int>>& convs, int hidden, int outputs,
                    const std::string& activation_name, const std::string& output) {
  require(frame.size() == 3 && frame[0] >= 1 && frame[1] >= 1 && frame[2] >= 1,
          "frame must be (height, width, channels), each >= 1");
  require(!convs.empty(), "convs needs at least one convolution");
  std::vector<ConvSpec> layers;
  for (const std::vector<int>& conv : convs) {
    require(conv.size() == 4 && conv[0] >= 1 && conv[1] >= 1 && conv[2] >= 1 && conv[3] >= 0,
            "each conv must be (channels, kernel, stride, padding): three >= 1, padding >= 0");
    layers.push_back(ConvSpec{conv[0], conv[1], conv[2], conv[3]});
  }
  require(hidden >= 1 && outputs >= 1, "hidden and outputs must be >= 1");
  return CnnSpec{frame[0], frame[1], frame[2], channels_last, scale, layers, hidden, outputs,
                 activation(activation_name), activation(output)};
}

Array<float> cnn_rows(CnnForward& forward, const Array<float>& prepared, std::size_t episodes,
                      const Array<double>& inputs, const Array<bool>& active) {
  return step_rows(forward, "prepared", prepared, forward.prepared_size(), forward.input_size(),
                   static_cast<std::size_t>(forward.spec().outputs), episodes, inputs, active);
}

// Checked inputs and fresh output arrays for one call.
struct Call {
  MlpSpec mlp;
  Array<float> genomes;
  Array<std::uint64_t> sample_seeds;
  std::optional<Array<double>> mean, std;
  RolloutInput in;
  Array<double> returns;
  Array<std::int64_t> steps;
  Array<bool> solved, broken;
  Array<float> archive;
  Array<std::int64_t> seen;

  Call(const std::vector<int>& sizes, const std::string& hidden, const std::string& output,
       Array<float> genomes_, std::size_t episodes, std::int64_t max_steps,
       std::optional<Array<double>> mean_, std::optional<Array<double>> std_, double obs_clip,
       std::size_t archive_size, Array<std::uint64_t> seeds)
      : mlp(checked_mlp(sizes, hidden, output)),
        genomes(std::move(genomes_)),
        sample_seeds(std::move(seeds)),
        mean(std::move(mean_)),
        std(std::move(std_)) {
    require(genomes.ndim() == 2 && genomes.shape(1) == static_cast<py::ssize_t>(mlp.num_params()),
            "genomes must have shape (groups, " + std::to_string(mlp.num_params()) + ")");
    const auto groups = genomes.shape(0);
    require(episodes >= 1, "episodes must be >= 1");
    require(sample_seeds.ndim() == 1 && sample_seeds.shape(0) == groups,
            "sample_seeds must have one seed per genome");
    require(mean.has_value() == std.has_value(), "give both obs_mean and obs_std, or neither");
    require(obs_clip > 0.0, "obs_clip must be > 0");
    if (mean) {
      require(mean->ndim() == 1 && mean->shape(0) == sizes.front() && std->ndim() == 1 &&
                  std->shape(0) == sizes.front(),
              "obs_mean and obs_std must have one entry per observation");
    }
    const auto n = groups * static_cast<py::ssize_t>(episodes);
    returns = Array<double>(n);
    steps = Array<std::int64_t>(n);
    solved = Array<bool>(n);
    broken = Array<bool>(n);
    archive = Array<float>({groups, static_cast<py::ssize_t>(archive_size),
                            static_cast<py::ssize_t>(sizes.front())});
    seen = Array<std::int64_t>(groups);
    in = RolloutInput{genomes.data(), static_cast<std::size_t>(groups), episodes, max_steps,
                      mean ? mean->data() : nullptr, std ? std->data() : nullptr, obs_clip,
                      archive_size, sample_seeds.data()};
  }

  RolloutOutput output() {
    return RolloutOutput{returns.mutable_data(),
                         steps.mutable_data(),
                         reinterpret_cast<std::uint8_t*>(solved.mutable_data()),
                         reinterpret_cast<std::uint8_t*>(broken.mutable_data()),
                         archive.mutable_data(),
                         seen.mutable_data()};
  }

  py::dict result() const {
    using namespace pybind11::literals;
    return py::dict("returns"_a = returns, "steps"_a = steps, "solved"_a = solved,
                    "broken"_a = broken, "archive"_a = archive, "seen"_a = seen);
  }
};

}  // namespace

PYBIND11_MODULE(_rollout, m) {
  m.doc() = "Fused MLP rollouts in CartPole-v1 and the hard maze, and the MLP forward of the "
            "lockstep loop. Use smevo.evaluation.native.";
  m.attr("ACTIVATIONS") = activation_names();

  py::class_<MlpForward>(m, "MlpForward",
                         "An mlp's population forward for one lockstep step: rows of inputs, "
                         "each by its genome, outputs rounded to float32.")
      .def(py::init([](const std::vector<int>& sizes, const std::string& hidden,
                       const std::string& output) {
             return MlpForward(checked_mlp(sizes, hidden, output));
           }),
           py::arg("sizes"), py::arg("hidden"), py::arg("output"))
      .def("__call__", &mlp_rows, py::arg("genomes"), py::arg("episodes"),
           py::arg("inputs"), py::arg("active"),
           "Outputs [groups * episodes, out] of inputs [groups * episodes, in], row r by "
           "genome r // episodes of genomes [groups, params] (float64); zeros where not "
           "active.")
      .def(
          "prepare",
          [](const MlpForward& forward, const Array<double>& genomes) {
            const std::size_t params = forward.spec().num_params();
            return prepared_rows<double, double>(genomes, params, params,
                                                 [params](const double* g, double* row) {
                                                   std::copy(g, g + params, row);
                                                 });
          },
          py::arg("genomes"), "genomes [groups, params] as __call__ reads them (float64).");

  py::class_<CnnForward>(m, "CnnForward",
                         "A cnn's population forward for one lockstep step: rows of frames, "
                         "each by its prepared genome, outputs rounded to float32.")
      .def(py::init([](const std::vector<int>& frame, bool channels_last, double scale,
                       const std::vector<std::vector<int>>& convs, int hidden, int outputs,
                       const std::string& activation_name, const std::string& output) {
             return CnnForward(checked_cnn(frame, channels_last, scale, convs, hidden, outputs,
                                           activation_name, output));
           }),
           py::arg("frame"), py::arg("channels_last"), py::arg("scale"), py::arg("convs"),
           py::arg("hidden"), py::arg("outputs"), py::arg("activation"), py::arg("output"))
      .def_property_readonly("num_params", &CnnForward::num_params)
      .def(
          "prepare",
          [](const CnnForward& forward, const Array<float>& genomes) {
            return prepared_rows<float, float>(genomes, forward.num_params(),
                                               forward.prepared_size(),
                                               [&forward](const float* g, float* row) {
                                                 forward.prepare(g, row);
                                               });
          },
          py::arg("genomes"),
          "genomes [groups, params] (float32, as smevo's genomes are) in torch's order, laid "
          "out as __call__ reads them.")
      .def("__call__", &cnn_rows, py::arg("prepared"), py::arg("episodes"), py::arg("inputs"),
           py::arg("active"),
           "Outputs [groups * episodes, outputs] of frames [groups * episodes, H * W * C], "
           "row r by prepared genome r // episodes; zeros where not active.");

  m.def(
      "cartpole",
      [](const std::vector<int>& sizes, const std::string& hidden, const std::string& output,
         Array<float> genomes, Array<double> initial_states, std::size_t episodes,
         std::int64_t max_steps, std::optional<Array<double>> obs_mean,
         std::optional<Array<double>> obs_std, double obs_clip, std::size_t archive_size,
         Array<std::uint64_t> sample_seeds) {
        Call call(sizes, hidden, output, std::move(genomes), episodes, max_steps,
                  std::move(obs_mean), std::move(obs_std), obs_clip, archive_size,
                  std::move(sample_seeds));
        require(initial_states.ndim() == 2 && initial_states.shape(1) == 4 &&
                    initial_states.shape(0) == call.returns.shape(0),
                "initial_states must have shape (groups * episodes, 4)");
        const RolloutOutput out = call.output();
        {
          py::gil_scoped_release release;
          smevo::rollout::rollout_cartpole(call.mlp, initial_states.data(), call.in, out);
        }
        return call.result();
      },
      py::arg("sizes"), py::arg("hidden"), py::arg("output"), py::arg("genomes"),
      py::arg("initial_states"), py::arg("episodes"), py::arg("max_steps"), py::arg("obs_mean"),
      py::arg("obs_std"), py::arg("obs_clip"), py::arg("archive_size"), py::arg("sample_seeds"));

  m.def(
      "maze",
      [](const std::vector<int>& sizes, const std::string& hidden, const std::string& output,
         Array<float> genomes, const smevo::maze::Maze& maze, std::int64_t frame_skip,
         bool euclidean, std::size_t episodes, std::int64_t max_steps,
         std::optional<Array<double>> obs_mean, std::optional<Array<double>> obs_std,
         double obs_clip, std::size_t archive_size, Array<std::uint64_t> sample_seeds) {
        Call call(sizes, hidden, output, std::move(genomes), episodes, max_steps,
                  std::move(obs_mean), std::move(obs_std), obs_clip, archive_size,
                  std::move(sample_seeds));
        const RolloutOutput out = call.output();
        {
          py::gil_scoped_release release;
          smevo::rollout::rollout_maze(call.mlp, maze, frame_skip, euclidean, call.in, out);
        }
        return call.result();
      },
      py::arg("sizes"), py::arg("hidden"), py::arg("output"), py::arg("genomes"),
      py::arg("maze"), py::arg("frame_skip"), py::arg("euclidean"), py::arg("episodes"),
      py::arg("max_steps"), py::arg("obs_mean"), py::arg("obs_std"), py::arg("obs_clip"),
      py::arg("archive_size"), py::arg("sample_seeds"));
}
