// The breadcrumb hard-maze simulator; see maze.hpp for the model.
#include "maze.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace smevo::maze {
namespace {

float clamp(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

float radians(float degrees) { return degrees / 180.0f * kPi; }

bool within(float v, float bound) { return std::isfinite(v) && std::fabs(v) <= bound; }

void check_point(Vec2 p, const std::string& what) {
  if (!within(p.x, kMaxCoordinate) || !within(p.y, kMaxCoordinate)) {
    std::ostringstream msg;
    msg << what << " (" << p.x << ", " << p.y << ") must be finite and within +-"
        << kMaxCoordinate;
    throw std::invalid_argument(msg.str());
  }
}

// cos and sin of each rangefinder's angle offset, computed once.
struct RangefinderDirections {
  std::array<float, kNumRangefinders> cos_offset{};
  std::array<float, kNumRangefinders> sin_offset{};
  RangefinderDirections() {
    for (int k = 0; k < kNumRangefinders; ++k) {
      cos_offset[k] = std::cos(radians(kRangefinderAngles[k]));
      sin_offset[k] = std::sin(radians(kRangefinderAngles[k]));
    }
  }
};

const RangefinderDirections& rangefinder_directions() {
  static const RangefinderDirections directions;
  return directions;
}

// Nearest grid index of coordinate v in [origin, origin + size - 1]; NaN maps to origin.
int grid_index(float v, int origin, int size) {
  float cell = std::floor(v + 0.5f) - static_cast<float>(origin);
  if (!(cell >= 0.0f)) return 0;
  if (!(cell <= static_cast<float>(size - 1))) return size - 1;
  return static_cast<int>(cell);
}

}  // namespace

float squared_distance_to_segment(const Segment& s, Vec2 p) {
  const float ex = s.b.x - s.a.x;
  const float ey = s.b.y - s.a.y;
  const float px = p.x - s.a.x;
  const float py = p.y - s.a.y;
  const float length_sq = ex * ex + ey * ey;
  const float u = length_sq > 0.0f ? (px * ex + py * ey) / length_sq : 0.0f;
  if (u <= 0.0f) return px * px + py * py;
  if (u >= 1.0f) {
    const float qx = p.x - s.b.x;
    const float qy = p.y - s.b.y;
    return qx * qx + qy * qy;
  }
  const float dx = s.a.x + u * ex - p.x;
  const float dy = s.a.y + u * ey - p.y;
  return dx * dx + dy * dy;
}

Maze::Maze(MazeSpec spec) : spec_(std::move(spec)) {
  if (spec_.steps < 1 || spec_.steps > kMaxSteps) {
    throw std::invalid_argument("steps must be in [1, " + std::to_string(kMaxSteps) +
                                "], got " + std::to_string(spec_.steps));
  }
  check_point(spec_.start, "start");
  check_point(spec_.goal, "goal");
  if (!within(spec_.start_heading, kMaxCoordinate)) {
    throw std::invalid_argument("start heading must be finite and within +-1e6 degrees");
  }
  wall_directions_.reserve(spec_.walls.size());
  for (std::size_t i = 0; i < spec_.walls.size(); ++i) {
    const Segment& w = spec_.walls[i];
    check_point(w.a, "wall " + std::to_string(i) + " end a");
    check_point(w.b, "wall " + std::to_string(i) + " end b");
    wall_directions_.push_back({w.b.x - w.a.x, w.b.y - w.a.y});
  }
  build_breadcrumb_map();
}

bool Maze::collides(Vec2 p) const {
  constexpr float limit = kRobotRadius * kRobotRadius;
  for (const Segment& w : spec_.walls) {
    if (squared_distance_to_segment(w, p) < limit) return true;
  }
  return false;
}

// free_[c] = !collides(point of c), computed wall by wall: a wall can only block the cells
// near it, so each wall visits the rows within the robot radius of it and, in each row, the
// columns within the radius of the part of the wall near that row (widened by two cells
// against rounding), then applies the exact test of `collides` there. The cost is the
// walls' total length times the radius, not walls x cells (2,000 walls on the largest grid
// took 37 s the plain way).
void Maze::mark_free_cells() {
  free_.assign(static_cast<std::size_t>(grid_width_) * grid_height_, 1);
  constexpr float limit = kRobotRadius * kRobotRadius;
  constexpr double reach = kRobotRadius + 2.0;  // the radius, widened by two cells
  // The grid index of coordinate offset v, clamped into [0, size - 1].
  const auto index = [](double v, int size) {
    return static_cast<int>(std::min(std::max(v, 0.0), static_cast<double>(size - 1)));
  };
  for (const Segment& w : spec_.walls) {
    const double ax = w.a.x, ay = w.a.y, bx = w.b.x, by = w.b.y;
    const int row_lo = index(std::floor(std::min(ay, by) - reach) - grid_y0_, grid_height_);
    const int row_hi = index(std::ceil(std::max(ay, by) + reach) - grid_y0_, grid_height_);
    for (int row = row_lo; row <= row_hi; ++row) {
      const double y = static_cast<double>(grid_y0_ + row);
      // The part of the wall whose y lies within `reach` of this row: parameters [u0, u1].
      double u0 = 0.0, u1 = 1.0;
      if (by != ay) {
        const double ua = (y - reach - ay) / (by - ay);
        const double ub = (y + reach - ay) / (by - ay);
        u0 = std::max(0.0, std::min(ua, ub));
        u1 = std::min(1.0, std::max(ua, ub));
        if (u0 > u1) continue;
      } else if (std::fabs(ay - y) > reach) {
        continue;
      }
      const double x0 = ax + u0 * (bx - ax), x1 = ax + u1 * (bx - ax);
      const int col_lo = index(std::floor(std::min(x0, x1) - reach) - grid_x0_, grid_width_);
      const int col_hi = index(std::ceil(std::max(x0, x1) + reach) - grid_x0_, grid_width_);
      std::uint8_t* cells = &free_[static_cast<std::size_t>(row) * grid_width_];
      for (int col = col_lo; col <= col_hi; ++col) {
        if (!cells[col]) continue;
        const Vec2 p{static_cast<float>(grid_x0_ + col), static_cast<float>(y)};
        if (squared_distance_to_segment(w, p) < limit) cells[col] = 0;
      }
    }
  }
}

void Maze::build_breadcrumb_map() {
  float lo_x = std::min(spec_.start.x, spec_.goal.x), hi_x = std::max(spec_.start.x, spec_.goal.x);
  float lo_y = std::min(spec_.start.y, spec_.goal.y), hi_y = std::max(spec_.start.y, spec_.goal.y);
  for (const Segment& w : spec_.walls) {
    lo_x = std::min({lo_x, w.a.x, w.b.x});
    hi_x = std::max({hi_x, w.a.x, w.b.x});
    lo_y = std::min({lo_y, w.a.y, w.b.y});
    hi_y = std::max({hi_y, w.a.y, w.b.y});
  }
  grid_x0_ = static_cast<int>(std::floor(lo_x)) - 1;
  grid_y0_ = static_cast<int>(std::floor(lo_y)) - 1;
  const std::int64_t width = static_cast<std::int64_t>(std::ceil(hi_x)) + 2 - grid_x0_;
  const std::int64_t height = static_cast<std::int64_t>(std::ceil(hi_y)) + 2 - grid_y0_;
  if (width * height > kMaxGridCells) {
    throw std::invalid_argument("the maze spans " + std::to_string(width) + " x " +
                                std::to_string(height) +
                                " grid cells, more than the breadcrumb map allows (" +
                                std::to_string(kMaxGridCells) + ")");
  }
  grid_width_ = static_cast<int>(width);
  grid_height_ = static_cast<int>(height);
  const std::size_t cells = static_cast<std::size_t>(width * height);

  mark_free_cells();

  // Visits the in-grid 4-neighbours of cell c.
  const auto for_each_neighbour = [this](std::int32_t c, auto&& visit) {
    const int row = c / grid_width_;
    const int col = c % grid_width_;
    if (col > 0) visit(c - 1);
    if (col + 1 < grid_width_) visit(c + 1);
    if (row > 0) visit(c - grid_width_);
    if (row + 1 < grid_height_) visit(c + grid_width_);
  };

  // Breadth-first search from the goal's cell through free cells.
  breadcrumb_.assign(cells, -1);
  const std::int32_t goal = grid_index(spec_.goal.y, grid_y0_, grid_height_) * grid_width_ +
                            grid_index(spec_.goal.x, grid_x0_, grid_width_);
  std::vector<std::int32_t> labelled{goal};
  breadcrumb_[goal] = 0;
  for (std::size_t head = 0; head < labelled.size(); ++head) {
    const std::int32_t c = labelled[head];
    for_each_neighbour(c, [&](std::int32_t n) {
      if (free_[n] && breadcrumb_[n] < 0) {
        breadcrumb_[n] = breadcrumb_[c] + 1;
        labelled.push_back(n);
      }
    });
  }

  // Every other cell, layer by layer outwards from the labelled set: one more than its
  // smallest neighbour labelled in an earlier layer.
  std::vector<std::int32_t> frontier = std::move(labelled);
  std::vector<std::uint8_t> queued(cells, 0);
  std::vector<std::int32_t> layer;
  std::vector<std::int32_t> values;
  while (!frontier.empty()) {
    layer.clear();
    for (const std::int32_t c : frontier) {
      for_each_neighbour(c, [&](std::int32_t n) {
        if (breadcrumb_[n] < 0 && !queued[n]) {
          queued[n] = 1;
          layer.push_back(n);
        }
      });
    }
    values.assign(layer.size(), 0);
    for (std::size_t j = 0; j < layer.size(); ++j) {
      std::int32_t best = INT32_MAX;
      for_each_neighbour(layer[j], [&](std::int32_t n) {
        if (breadcrumb_[n] >= 0) best = std::min(best, breadcrumb_[n]);
      });
      values[j] = best + 1;
    }
    for (std::size_t j = 0; j < layer.size(); ++j) breadcrumb_[layer[j]] = values[j];
    frontier.swap(layer);
  }
}

float Maze::breadcrumb_distance(Vec2 p) const {
  const int col = grid_index(p.x, grid_x0_, grid_width_);
  const int row = grid_index(p.y, grid_y0_, grid_height_);
  return static_cast<float>(breadcrumb_[static_cast<std::size_t>(row) * grid_width_ + col]);
}

float Maze::euclidean_distance(Vec2 p) const {
  const float dx = spec_.goal.x - p.x;
  const float dy = spec_.goal.y - p.y;
  return std::sqrt(dx * dx + dy * dy);
}

Robot Maze::start_robot() const {
  Robot robot;
  robot.position = spec_.start;
  robot.heading = spec_.start_heading;
  const float dx = spec_.goal.x - robot.position.x;
  const float dy = spec_.goal.y - robot.position.y;
  robot.solved = dx * dx + dy * dy < kGoalRadius * kGoalRadius;
  return robot;
}

void Maze::apply_motors(Robot& robot, float turn, float speed) const {
  const float target_turn = (clamp(turn, 0.0f, 1.0f) - 0.5f) * kMotorGain;
  const float target_speed = (clamp(speed, 0.0f, 1.0f) - 0.5f) * kMotorGain;
  robot.angular_velocity +=
      clamp(target_turn - robot.angular_velocity, -kMaxChange, kMaxChange);
  robot.speed += clamp(target_speed - robot.speed, -kMaxChange, kMaxChange);
  robot.angular_velocity = clamp(robot.angular_velocity, -kMaxVelocity, kMaxVelocity);
  robot.speed = clamp(robot.speed, -kMaxVelocity, kMaxVelocity);
}

void Maze::advance(Robot& robot) const {
  const float heading = radians(robot.heading);
  const float vx = std::cos(heading) * robot.speed;
  const float vy = std::sin(heading) * robot.speed;
  robot.heading += robot.angular_velocity;
  if (robot.heading > 360.0f) robot.heading -= 360.0f;
  if (robot.heading < 0.0f) robot.heading += 360.0f;
  const Vec2 moved{robot.position.x + vx, robot.position.y + vy};
  if (!collides(moved)) robot.position = moved;
  robot.steps += 1;
  const float dx = spec_.goal.x - robot.position.x;
  const float dy = spec_.goal.y - robot.position.y;
  if (dx * dx + dy * dy < kGoalRadius * kGoalRadius) robot.solved = true;
}

void Maze::sense(const Robot& robot, float* observation) const {
  const RangefinderDirections& offsets = rangefinder_directions();
  const float heading = radians(robot.heading);
  const float cos_h = std::cos(heading);
  const float sin_h = std::sin(heading);
  const Vec2 p = robot.position;

  observation[0] = 1.0f;
  // Rangefinder k is the segment p + r * d_k, 0 < r < 1, with |d_k| = range; a wall a + s * e
  // is hit when 0 < r < 1 and 0 < s < 1 strictly (parallel walls never are). The reading is
  // the nearest hit's distance / range, i.e. its r, and 1 when nothing is hit.
  std::array<float, kNumRangefinders> dx{};
  std::array<float, kNumRangefinders> dy{};
  std::array<float, kNumRangefinders> nearest{};
  for (int k = 0; k < kNumRangefinders; ++k) {
    dx[k] = (cos_h * offsets.cos_offset[k] - sin_h * offsets.sin_offset[k]) * kRangefinderRange;
    dy[k] = (sin_h * offsets.cos_offset[k] + cos_h * offsets.sin_offset[k]) * kRangefinderRange;
    nearest[k] = 1.0f;
  }
  for (std::size_t j = 0; j < spec_.walls.size(); ++j) {
    const float wx = spec_.walls[j].a.x - p.x;
    const float wy = spec_.walls[j].a.y - p.y;
    const float ex = wall_directions_[j].x;
    const float ey = wall_directions_[j].y;
    const float w_cross_e = wx * ey - wy * ex;
    for (int k = 0; k < kNumRangefinders; ++k) {
      float denom = dx[k] * ey - dy[k] * ex;
      float num_r = w_cross_e;
      float num_s = wx * dy[k] - wy * dx[k];
      if (denom < 0.0f) {
        denom = -denom;
        num_r = -num_r;
        num_s = -num_s;
      }
      if (num_r > 0.0f && num_r < denom && num_s > 0.0f && num_s < denom) {
        nearest[k] = std::min(nearest[k], num_r / denom);
      }
    }
  }
  for (int k = 0; k < kNumRangefinders; ++k) observation[1 + k] = nearest[k];

  // Goal radar: the goal's bearing in the robot's frame, in degrees.
  const float gx = spec_.goal.x - p.x;
  const float gy = spec_.goal.y - p.y;
  const float rx = gx * cos_h + gy * sin_h;
  const float ry = gy * cos_h - gx * sin_h;
  float bearing;
  if (rx == 0.0f) {
    bearing = ry >= 0.0f ? 90.0f : 270.0f;
  } else {
    bearing = std::atan(ry / rx) / kPi * 180.0f;
    if (rx < 0.0f) bearing += 180.0f;
  }
  for (int k = 0; k < kNumRadars; ++k) {
    const float lo = kRadarSlices[k][0];
    const float hi = kRadarSlices[k][1];
    const bool hit = (bearing >= lo && bearing < hi) ||
                     (bearing + 360.0f >= lo && bearing + 360.0f < hi);
    observation[1 + kNumRangefinders + k] = hit ? 1.0f : 0.0f;
  }
}

void validate_robot(const Maze& maze, const Robot& robot) {
  check_point(robot.position, "robot position");
  if (!within(robot.heading, kMaxCoordinate) || !within(robot.speed, kMaxVelocity) ||
      !within(robot.angular_velocity, kMaxVelocity)) {
    std::ostringstream msg;
    msg << "robot heading " << robot.heading << ", speed " << robot.speed
        << " and angular velocity " << robot.angular_velocity
        << " must be finite, |heading| <= 1e6 and |velocities| <= " << kMaxVelocity;
    throw std::invalid_argument(msg.str());
  }
  if (robot.steps < 0 || robot.steps > maze.steps()) {
    throw std::invalid_argument("robot step count " + std::to_string(robot.steps) +
                                " must be in [0, " + std::to_string(maze.steps()) + "]");
  }
}

RobotBatch::RobotBatch(std::shared_ptr<const Maze> maze, std::size_t size)
    : maze_(std::move(maze)), robots_(size), observations_(size * kObservationSize) {
  if (!maze_) throw std::invalid_argument("maze must not be None");
  reset(nullptr);
}

void RobotBatch::reset(const std::uint8_t* mask) {
  const Robot start = maze_->start_robot();
  for (std::size_t i = 0; i < robots_.size(); ++i) {
    if (mask != nullptr && !mask[i]) continue;
    robots_[i] = start;
    maze_->sense(robots_[i], &observations_[i * kObservationSize]);
  }
}

void RobotBatch::step(const float* actions, std::int64_t frame_skip,
                      const std::uint8_t* reset_mask) {
  if (frame_skip < 1) {
    throw std::invalid_argument("frame_skip must be >= 1, got " + std::to_string(frame_skip));
  }
  for (std::size_t i = 0; i < robots_.size() * kActionSize; ++i) {
    if (!std::isfinite(actions[i])) {
      std::ostringstream msg;
      msg << "action " << (i % kActionSize == 0 ? "turn" : "speed") << " of robot "
          << i / kActionSize << " is " << actions[i] << "; actions must be finite";
      throw std::invalid_argument(msg.str());
    }
  }
  const Robot start = maze_->start_robot();
  for (std::size_t i = 0; i < robots_.size(); ++i) {
    Robot& robot = robots_[i];
    if (reset_mask != nullptr && reset_mask[i]) {
      robot = start;
    } else {
      const std::int64_t n = std::min(frame_skip, maze_->steps() - robot.steps);
      const float turn = actions[i * kActionSize];
      const float speed = actions[i * kActionSize + 1];
      for (std::int64_t t = 0; t < n; ++t) {
        maze_->apply_motors(robot, turn, speed);
        maze_->advance(robot);
      }
    }
    maze_->sense(robot, &observations_[i * kObservationSize]);
  }
}

void RobotBatch::set_robot(std::size_t i, const Robot& robot) {
  if (i >= robots_.size()) throw std::out_of_range("robot index out of range");
  validate_robot(*maze_, robot);
  robots_[i] = robot;
  maze_->sense(robot, &observations_[i * kObservationSize]);
}

}  // namespace smevo::maze
