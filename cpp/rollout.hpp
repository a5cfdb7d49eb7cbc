// Fused population rollouts: an MLP genome acting in a natively simulated env, in one C++ call.
//
// This is the fast path of smevo's lockstep rollout (smevo/evaluation/rollout.py) for the
// cases where both the policy and the env exist in C++: the `mlp` policy in CartPole-v1 or in
// the breadcrumb hard maze. It computes what the Python loop computes, step for step: the
// forward in double precision from the float32 genome, outputs rounded to float32 before the
// action is decoded, a non-finite output ends the individual as broken, and each individual
// keeps a uniform sample of the observations it saw (Algorithm R with the same hash-derived
// uniforms as the Python reservoir). Individuals are independent, so the result of one never
// depends on which others share its call.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "maze.hpp"

namespace smevo::rollout {

enum class Activation { kLinear, kRelu, kTanh, kSigmoid, kSelu };

// `a` applied to `v`, as torch applies the activation of that name.
inline double activate(Activation a, double v) {
  switch (a) {
    case Activation::kLinear:
      return v;
    case Activation::kRelu:
      return v > 0.0 ? v : (v == v ? 0.0 : v);  // NaN stays NaN, as in torch.relu
    case Activation::kTanh:
      return std::tanh(v);
    case Activation::kSigmoid:
      return 1.0 / (1.0 + std::exp(-v));
    case Activation::kSelu: {
      constexpr double kAlpha = 1.6732632423543772848170429916717;
      constexpr double kScale = 1.0507009873554804934193349852946;
      return v > 0.0 ? kScale * v : kScale * (kAlpha * std::expm1(v));
    }
  }
  return v;
}

// Four interleaved partial sums, so that the compiler can use SIMD without reassociating
// (the summation order differs from BLAS's anyway; outputs are rounded to float32).
inline double dot(const double* x, const double* y, int n) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i] * y[i];
    s1 += x[i + 1] * y[i + 1];
    s2 += x[i + 2] * y[i + 2];
    s3 += x[i + 3] * y[i + 3];
  }
  double sum = (s0 + s1) + (s2 + s3);
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

// A multilayer perceptron as smevo's `mlp` policy builds it: Linear layers of `sizes`
// (input, hidden..., output), `hidden` after every Linear but the last, `output` after it.
struct MlpSpec {
  std::vector<int> sizes;
  Activation hidden = Activation::kTanh;
  Activation output = Activation::kLinear;

  // Genome length: each layer's weight [out, in] row-major, then its bias (nn.Linear order).
  std::size_t num_params() const;
};

// The fused rollouts' forward on its own, for smevo's lockstep loop (the `mlp` policy in any
// other env): a group's observations in, float32-rounded outputs out, in one call. A Python
// step of a few small genomes paid more for torch's per-call cost than for the products.
class MlpForward {
 public:
  explicit MlpForward(MlpSpec spec);

  const MlpSpec& spec() const { return spec_; }

  // Row r of `inputs` [rows, in] is applied to genome r / episodes of `genomes` [G, params],
  // in double; outputs [rows, out] are rounded to float32, zeros where `active[r]` is 0.
  void operator()(const double* genomes, std::size_t episodes, std::size_t rows,
                  const double* inputs, const std::uint8_t* active, float* outputs);

 private:
  MlpSpec spec_;
  std::vector<double> a_;
  std::vector<double> b_;
};

// Gymnasium's CartPole-v1 (Euler integrator, +1 per step, 500-step limit), in double.
struct CartPoleState {
  double x = 0.0, x_dot = 0.0, theta = 0.0, theta_dot = 0.0;
  std::int64_t steps = 0;
};

// What one env step reports.
struct StepOutcome {
  double reward = 0.0;
  bool ended = false;  // terminated or truncated
  bool solved = false;
};

// One call's work: `groups` genomes, each run on `episodes` episodes in lockstep.
struct RolloutInput {
  const float* genomes = nullptr;  // [groups, num_params]
  std::size_t groups = 0;
  std::size_t episodes = 0;
  std::int64_t max_steps = -1;           // < 0: only the env's own limit
  const double* obs_mean = nullptr;      // [obs] or null: no observation normalisation
  const double* obs_std = nullptr;       // [obs]
  double obs_clip = 0.0;                 // normalised observations are clipped to ±obs_clip
  std::size_t archive_size = 0;          // observations kept per individual
  const std::uint64_t* sample_seeds = nullptr;  // [groups]
};

// Buffers the caller owns, sized for the input.
struct RolloutOutput {
  double* returns = nullptr;     // [groups * episodes]
  std::int64_t* steps = nullptr; // [groups * episodes]
  std::uint8_t* solved = nullptr;
  std::uint8_t* broken = nullptr;
  float* archive = nullptr;      // [groups, archive_size, obs]
  std::int64_t* seen = nullptr;  // [groups]: observations offered to each archive
};

// CartPole episodes start from `initial_states` [groups * episodes, 4] (x, x_dot, theta,
// theta_dot), the states single CartPole-v1 envs reset with the episodes' seeds would draw.
void rollout_cartpole(const MlpSpec& mlp, const double* initial_states, const RolloutInput& in,
                      const RolloutOutput& out);

// Maze episodes start at the maze's start; each action is held for `frame_skip` simulator
// steps; the reward at the end is minus the breadcrumb (or, with `euclidean`, the straight
// line) distance to the goal.
void rollout_maze(const MlpSpec& mlp, const maze::Maze& maze, std::int64_t frame_skip,
                  bool euclidean, const RolloutInput& in, const RolloutOutput& out);

}  // namespace smevo::rollout
