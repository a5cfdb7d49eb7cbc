// Fused population rollouts; see rollout.hpp for what is computed and why.
#include "rollout.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace smevo::rollout {
namespace {

// The forward of an MlpSpec for one input: `params` one genome in double, `a` and `b` scratch
// rows as wide as the widest layer. Outputs are rounded to float32; returns false if any is
// not finite.
bool mlp_apply(const MlpSpec& spec, const double* params, const double* input, double* a,
               double* b, float* outputs) {
  const std::vector<int>& sizes = spec.sizes;
  std::copy(input, input + sizes[0], a);
  const double* w = params;
  const std::size_t layers = sizes.size() - 1;
  for (std::size_t l = 0; l < layers; ++l) {
    const int fan_in = sizes[l];
    const int fan_out = sizes[l + 1];
    const double* bias = w + static_cast<std::ptrdiff_t>(fan_in) * fan_out;
    const Activation act = l + 1 < layers ? spec.hidden : spec.output;
    for (int o = 0; o < fan_out; ++o) {
      b[o] = activate(act, dot(w + static_cast<std::ptrdiff_t>(o) * fan_in, a, fan_in) + bias[o]);
    }
    w = bias + fan_out;
    std::swap(a, b);
  }
  bool finite = true;
  for (int k = 0; k < sizes.back(); ++k) {
    outputs[k] = static_cast<float>(a[k]);
    finite = finite && std::isfinite(outputs[k]);
  }
  return finite;
}

int widest_layer(const MlpSpec& spec) {
  return *std::max_element(spec.sizes.begin(), spec.sizes.end());
}

// One genome of an MlpSpec, converted to double once, applied to one input at a time.
class Mlp {
 public:
  explicit Mlp(const MlpSpec& spec)
      : spec_(spec), params_(spec.num_params()), a_(widest_layer(spec)), b_(a_.size()) {}

  void load(const float* genome) {
    std::copy(genome, genome + params_.size(), params_.begin());
  }

  bool operator()(const double* input, float* outputs) {
    return mlp_apply(spec_, params_.data(), input, a_.data(), b_.data(), outputs);
  }

 private:
  const MlpSpec& spec_;
  std::vector<double> params_;
  std::vector<double> a_;
  std::vector<double> b_;
};

// The reservoir's uniforms: splitmix64's finaliser of seed + (counter + 1) * golden, as
// smevo.evaluation.rollout._uniform_hash computes them.
double hashed_uniform(std::uint64_t seed, std::uint64_t counter) {
  std::uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z = z ^ (z >> 31);
  return static_cast<double>(z >> 11) / 9007199254740992.0;  // 2^53
}

// Gymnasium's CartPole-v1 with the operations in the order Gymnasium performs them.
struct CartPole {
  static constexpr int kObservationSize = 4;
  static constexpr int kOutputSize = 2;
  static constexpr double kGravity = 9.8;
  static constexpr double kMassPole = 0.1;
  static constexpr double kTotalMass = 0.1 + 1.0;
  static constexpr double kLength = 0.5;
  static constexpr double kPoleMassLength = 0.1 * 0.5;
  static constexpr double kForce = 10.0;
  static constexpr double kTau = 0.02;
  static constexpr double kXThreshold = 2.4;
  static constexpr std::int64_t kMaxEpisodeSteps = 500;
  using State = CartPoleState;

  const double* initial_states;
  const double theta_threshold = 12 * 2 * M_PI / 360;

  State reset(std::size_t episode) const {
    const double* s = initial_states + 4 * episode;
    return State{s[0], s[1], s[2], s[3], 0};
  }

  static void observe(const State& s, float* obs) {
    obs[0] = static_cast<float>(s.x);
    obs[1] = static_cast<float>(s.x_dot);
    obs[2] = static_cast<float>(s.theta);
    obs[3] = static_cast<float>(s.theta_dot);
  }

  // Discrete(2) by argmax (the first of equal outputs, as numpy's argmax).
  StepOutcome step(State& s, const float* outputs) const {
    const double force = outputs[1] > outputs[0] ? kForce : -kForce;
    const double costheta = std::cos(s.theta);
    const double sintheta = std::sin(s.theta);
    const double temp =
        (force + kPoleMassLength * (s.theta_dot * s.theta_dot) * sintheta) / kTotalMass;
    const double thetaacc =
        (kGravity * sintheta - costheta * temp) /
        (kLength * (4.0 / 3.0 - kMassPole * (costheta * costheta) / kTotalMass));
    const double xacc = temp - kPoleMassLength * thetaacc * costheta / kTotalMass;
    s.x = s.x + kTau * s.x_dot;
    s.x_dot = s.x_dot + kTau * xacc;
    s.theta = s.theta + kTau * s.theta_dot;
    s.theta_dot = s.theta_dot + kTau * thetaacc;
    s.steps += 1;
    const bool terminated = s.x < -kXThreshold || s.x > kXThreshold ||
                            s.theta < -theta_threshold || s.theta > theta_threshold;
    return StepOutcome{1.0, terminated || s.steps >= kMaxEpisodeSteps, false};
  }
};

// The breadcrumb hard maze: Box(2) actions in [0, 1] (clipped), each held for frame_skip
// simulator steps, the negative distance to the goal as the reward at the end.
struct MazeTask {
  static constexpr int kObservationSize = maze::kObservationSize;
  static constexpr int kOutputSize = maze::kActionSize;
  using State = maze::Robot;

  const maze::Maze& maze;
  std::int64_t frame_skip;
  bool euclidean;

  State reset(std::size_t) const { return maze.start_robot(); }

  void observe(const State& robot, float* obs) const { maze.sense(robot, obs); }

  StepOutcome step(State& robot, const float* outputs) const {
    const float turn = std::min(std::max(outputs[0], 0.0f), 1.0f);
    const float speed = std::min(std::max(outputs[1], 0.0f), 1.0f);
    const std::int64_t n = std::min(frame_skip, maze.steps() - robot.steps);
    for (std::int64_t t = 0; t < n; ++t) {
      maze.apply_motors(robot, turn, speed);
      maze.advance(robot);
    }
    StepOutcome outcome;
    outcome.ended = robot.steps >= maze.steps();
    outcome.solved = robot.solved;
    if (outcome.ended) {
      const float distance = euclidean ? maze.euclidean_distance(robot.position)
                                       : maze.breadcrumb_distance(robot.position);
      outcome.reward = 0.0 - static_cast<double>(distance);
    }
    return outcome;
  }
};

// The lockstep loop of smevo/evaluation/rollout.py for one env type: per individual, every
// step offers the observations of its running episodes (in episode order) to its archive,
// then each running episode acts on its observation.
template <class Env>
void run(const Env& env, const MlpSpec& spec, const RolloutInput& in, const RolloutOutput& out) {
  constexpr int kObs = Env::kObservationSize;
  if (spec.sizes.size() < 2 || spec.sizes.front() != kObs || spec.sizes.back() != Env::kOutputSize) {
    throw std::invalid_argument("the MLP's input and output sizes do not fit the env");
  }
  const std::size_t genome_size = spec.num_params();
  Mlp mlp(spec);
  std::vector<typename Env::State> states(in.episodes);
  std::vector<std::array<float, kObs>> obs(in.episodes);
  std::vector<std::uint8_t> done(in.episodes);
  std::array<double, kObs> input{};
  std::array<float, Env::kOutputSize> outputs{};
  for (std::size_t g = 0; g < in.groups; ++g) {
    mlp.load(in.genomes + g * genome_size);
    const std::size_t first = g * in.episodes;
    for (std::size_t e = 0; e < in.episodes; ++e) {
      states[e] = env.reset(first + e);
      env.observe(states[e], obs[e].data());
      done[e] = 0;
      out.returns[first + e] = 0.0;
      out.steps[first + e] = 0;
      out.solved[first + e] = 0;
      out.broken[first + e] = 0;
    }
    float* archive = out.archive + g * in.archive_size * kObs;
    std::int64_t seen = 0;
    std::size_t running = in.episodes;
    while (running > 0) {
      for (std::size_t e = 0; e < in.episodes; ++e) {
        if (done[e]) continue;
        const std::size_t i = first + e;
        const std::int64_t counter = seen++;
        const std::int64_t slot =
            static_cast<std::size_t>(counter) < in.archive_size
                ? counter
                : static_cast<std::int64_t>(std::floor(
                      hashed_uniform(in.sample_seeds[g], static_cast<std::uint64_t>(counter)) *
                      static_cast<double>(counter + 1)));
        if (static_cast<std::size_t>(slot) < in.archive_size) {
          std::memcpy(archive + slot * kObs, obs[e].data(), sizeof(float) * kObs);
        }
        for (int j = 0; j < kObs; ++j) {
          if (in.obs_mean == nullptr) {
            input[j] = obs[e][j];
          } else {
            const double z = (static_cast<double>(obs[e][j]) - in.obs_mean[j]) / in.obs_std[j];
            input[j] = static_cast<float>(std::min(std::max(z, -in.obs_clip), in.obs_clip));
          }
        }
        bool ended;
        if (!mlp(input.data(), outputs.data())) {
          out.broken[i] = 1;
          ended = true;
        } else {
          const StepOutcome outcome = env.step(states[e], outputs.data());
          out.returns[i] += outcome.reward;
          out.steps[i] += 1;
          out.solved[i] = out.solved[i] || outcome.solved;
          ended = outcome.ended || (in.max_steps >= 0 && out.steps[i] >= in.max_steps);
          if (!ended) env.observe(states[e], obs[e].data());
        }
        if (ended) {
          done[e] = 1;
          --running;
        }
      }
    }
    out.seen[g] = seen;
  }
}

}  // namespace

std::size_t MlpSpec::num_params() const {
  std::size_t total = 0;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    total += static_cast<std::size_t>(sizes[l] + 1) * static_cast<std::size_t>(sizes[l + 1]);
  }
  return total;
}

MlpForward::MlpForward(MlpSpec spec)
    : spec_(std::move(spec)), a_(widest_layer(spec_)), b_(a_.size()) {}

void MlpForward::operator()(const double* genomes, std::size_t episodes, std::size_t rows,
                            const double* inputs, const std::uint8_t* active, float* outputs) {
  const std::size_t genome_size = spec_.num_params();
  const std::size_t in = static_cast<std::size_t>(spec_.sizes.front());
  const std::size_t out = static_cast<std::size_t>(spec_.sizes.back());
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = outputs + r * out;
    if (active[r]) {
      mlp_apply(spec_, genomes + (r / episodes) * genome_size, inputs + r * in, a_.data(),
                b_.data(), row);
    } else {
      std::fill(row, row + out, 0.0f);
    }
  }
}

void rollout_cartpole(const MlpSpec& mlp, const double* initial_states, const RolloutInput& in,
                      const RolloutOutput& out) {
  run(CartPole{initial_states}, mlp, in, out);
}

void rollout_maze(const MlpSpec& mlp, const maze::Maze& maze, std::int64_t frame_skip,
                  bool euclidean, const RolloutInput& in, const RolloutOutput& out) {
  if (frame_skip < 1) throw std::invalid_argument("frame_skip must be >= 1");
  run(MazeTask{maze, frame_skip, euclidean}, mlp, in, out);
}

}  // namespace smevo::rollout
