// The breadcrumb hard-maze simulator of Lehman, Chen, Clune & Stanley (2018), in plain C++17.
//
// This header knows nothing about Python: cpp/bindings.cpp wraps it as smevo_envs._maze.
// Everything is float32, as in the reference simulator, and nothing here is random: the
// Python environments own all randomness (there is none in this domain).
//
// Coordinates are screen coordinates (x to the right, y down); angles are degrees, and a
// positive angle turns clockwise on screen. One simulator step is:
//
//   1. motor model: turn, speed in [0, 1] set target angular velocity (turn - 0.5) * 6 and
//      target speed (speed - 0.5) * 6; each may change by at most 0.2 per step, and both are
//      then clamped to [-3, 3];
//   2. the velocity is taken along the heading *before* this step's turn;
//   3. heading += angular velocity, wrapped once into [0, 360];
//   4. the robot moves to position + velocity unless that point is closer than the robot
//      radius (8) to any wall, in which case it stays where it is;
//   5. the sensors are recomputed and the goal check runs (within 10 of the goal: solved,
//      and solved stays set for the rest of the episode).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace smevo::maze {

inline constexpr float kPi = 3.1415926f;  // the reference simulator's value
inline constexpr float kRobotRadius = 8.0f;
inline constexpr float kRangefinderRange = 100.0f;
inline constexpr float kGoalRadius = 10.0f;
inline constexpr float kMotorGain = 6.0f;   // target velocities are (output - 0.5) * 6
inline constexpr float kMaxChange = 0.2f;   // largest change of either velocity per step
inline constexpr float kMaxVelocity = 3.0f; // |speed| and |angular velocity| limit

inline constexpr int kNumRangefinders = 6;
inline constexpr int kNumRadars = 4;
inline constexpr int kObservationSize = 1 + kNumRangefinders + kNumRadars;  // bias first
inline constexpr int kActionSize = 2;                                        // turn, speed

// Rangefinder directions relative to the heading, in degrees.
inline constexpr std::array<float, kNumRangefinders> kRangefinderAngles{-90.0f, -45.0f, 0.0f,
                                                                         45.0f,  90.0f,  -180.0f};
// Goal radar pie slices [lo, hi) in degrees relative to the heading: front, right, rear, left.
inline constexpr std::array<std::array<float, 2>, kNumRadars> kRadarSlices{
    {{315.0f, 405.0f}, {45.0f, 135.0f}, {135.0f, 225.0f}, {225.0f, 315.0f}}};

// Bounds that keep every computation finite (checked when a maze or a state is loaded).
inline constexpr float kMaxCoordinate = 1.0e6f;
inline constexpr std::int64_t kMaxSteps = 10'000'000;
inline constexpr std::int64_t kMaxGridCells = std::int64_t{1} << 24;

struct Vec2 {
  float x = 0.0f;
  float y = 0.0f;
};

struct Segment {
  Vec2 a;
  Vec2 b;
};

// What a maze file holds (the parsing lives in Python, smevo_envs/maze.py).
struct MazeSpec {
  std::vector<Segment> walls;
  Vec2 start;
  float start_heading = 0.0f;
  Vec2 goal;
  std::int64_t steps = 400;  // simulator steps per episode
};

// The state of one robot. `steps` counts simulator steps since the reset.
struct Robot {
  Vec2 position;
  float heading = 0.0f;
  float speed = 0.0f;
  float angular_velocity = 0.0f;
  std::int64_t steps = 0;
  bool solved = false;
};

// Squared distance from p to the closed segment s.
float squared_distance_to_segment(const Segment& s, Vec2 p);

// An immutable maze: walls, start, goal, horizon, and the breadcrumb map.
//
// Breadcrumb map. Grid cells are the integer points (x, y) of a box that covers every wall,
// the start and the goal with a margin of one cell. A cell is *free* when a robot could stand
// on its point (no wall closer than the robot radius, the same test as a move). The distance
// of a free cell is the number of 4-connected steps through free cells from the goal's cell
// (the goal's cell is 0 even if it is not free itself). Every other cell -- near a wall,
// inside one, or free but cut off from the goal -- takes the value of the nearest labelled
// cell plus the number of grid steps to it: with L(c) the grid-step distance from c to the
// labelled set, value(c) = 1 + min value(n) over the 4-neighbours n of c with L(n) = L(c) - 1.
// A position is looked up at its nearest grid point, clamped into the grid. Since a
// 4-connected path is never shorter than the straight line, a breadcrumb distance d means
// the nearest grid point is within d of the goal's cell.
class Maze {
 public:
  explicit Maze(MazeSpec spec);  // throws std::invalid_argument on a bad spec

  const MazeSpec& spec() const { return spec_; }
  std::int64_t steps() const { return spec_.steps; }

  bool collides(Vec2 p) const;
  float breadcrumb_distance(Vec2 p) const;
  float euclidean_distance(Vec2 p) const;

  // The breadcrumb grid, row-major with rows along y: value of the point
  // (grid_x0() + column, grid_y0() + row).
  int grid_x0() const { return grid_x0_; }
  int grid_y0() const { return grid_y0_; }
  int grid_width() const { return grid_width_; }
  int grid_height() const { return grid_height_; }
  const std::vector<std::int32_t>& breadcrumb_grid() const { return breadcrumb_; }
  const std::vector<std::uint8_t>& free_grid() const { return free_; }

  // One robot, as the simulator sees it.
  Robot start_robot() const;
  void apply_motors(Robot& robot, float turn, float speed) const;
  void advance(Robot& robot) const;  // steps 2-5 of the header comment, goal check included
  void sense(const Robot& robot, float* observation) const;  // kObservationSize floats

 private:
  void mark_free_cells();  // free_ from the walls
  void build_breadcrumb_map();

  MazeSpec spec_;
  std::vector<Vec2> wall_directions_;  // b - a of each wall
  int grid_x0_ = 0;
  int grid_y0_ = 0;
  int grid_width_ = 0;
  int grid_height_ = 0;
  std::vector<std::uint8_t> free_;
  std::vector<std::int32_t> breadcrumb_;
};

// Throws std::invalid_argument unless the robot state is finite, inside the coordinate bounds
// and its step count is within [0, maze.steps()].
void validate_robot(const Maze& maze, const Robot& robot);

// N robots in one maze, stepped together. Observations are kept per robot.
// Not thread-safe: one thread at a time per batch.
class RobotBatch {
 public:
  RobotBatch(std::shared_ptr<const Maze> maze, std::size_t size);

  std::size_t size() const { return robots_.size(); }
  const Maze& maze() const { return *maze_; }
  const std::shared_ptr<const Maze>& maze_ptr() const { return maze_; }

  // Puts the robots whose mask entry is non-zero (all robots if mask is null) at the start.
  void reset(const std::uint8_t* mask);

  // actions: size() x 2 floats (turn, speed). Each must be finite; values are clamped to
  // [0, 1] by the motor model. Every action is checked before any robot moves, so a bad
  // action throws std::invalid_argument and changes nothing.
  // Robots whose reset_mask entry is non-zero (reset_mask may be null) are reset instead of
  // stepped; the others advance min(frame_skip, steps left) simulator steps.
  void step(const float* actions, std::int64_t frame_skip, const std::uint8_t* reset_mask);

  const Robot& robot(std::size_t i) const { return robots_[i]; }
  void set_robot(std::size_t i, const Robot& robot);  // validates, then recomputes sensors
  const float* observation(std::size_t i) const { return &observations_[i * kObservationSize]; }
  bool done(std::size_t i) const { return robots_[i].steps >= maze_->steps(); }

 private:
  std::shared_ptr<const Maze> maze_;
  std::vector<Robot> robots_;
  std::vector<float> observations_;
};

}  // namespace smevo::maze
