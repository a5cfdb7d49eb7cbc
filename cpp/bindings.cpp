// pybind11 binding of the maze simulator: smevo_envs._maze.
//
// Thin on purpose: every argument is checked here (shape, dtype, range) and a bad one raises
// std::invalid_argument, which Python sees as ValueError; then the pure C++ core runs, with
// the GIL released for the batch step. Outputs are fresh numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "maze.hpp"

namespace py = pybind11;
using smevo::maze::Maze;
using smevo::maze::MazeSpec;
using smevo::maze::Robot;
using smevo::maze::RobotBatch;
using smevo::maze::Segment;
using smevo::maze::Vec2;
using smevo::maze::kActionSize;
using smevo::maze::kObservationSize;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

std::string shape_string(const py::array& a) {
  std::ostringstream out;
  out << "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) out << (d ? ", " : "") << a.shape(d);
  out << (a.ndim() == 1 ? ",)" : ")");
  return out.str();
}

// A wanted shape; -1 means any length ("n").
std::string shape_string(const std::vector<py::ssize_t>& shape) {
  std::ostringstream out;
  out << "(";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    out << (d ? ", " : "");
    if (shape[d] < 0) {
      out << "n";
    } else {
      out << shape[d];
    }
  }
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

// obj as a numpy array of a real (bool, int or float) dtype with `shape` (-1: any length).
py::array real_array(py::handle obj, const char* name, const std::vector<py::ssize_t>& shape) {
  py::array a = py::array::ensure(obj);
  if (!a) {
    throw std::invalid_argument(std::string(name) + " must be array-like with shape " +
                                shape_string(shape) + ", got an object numpy cannot convert");
  }
  const char kind = a.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
    throw std::invalid_argument(std::string(name) + " must hold real numbers, got dtype " +
                                std::string(py::str(a.dtype())));
  }
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (std::size_t d = 0; ok && d < shape.size(); ++d) ok = shape[d] < 0 || a.shape(d) == shape[d];
  if (!ok) {
    throw std::invalid_argument(std::string(name) + " must have shape " + shape_string(shape) +
                                ", got " + shape_string(a));
  }
  return a;
}

// obj as float32 values: finite and within float32 range, else ValueError naming the entry.
std::vector<float> finite_floats(py::handle obj, const char* name,
                                 const std::vector<py::ssize_t>& shape) {
  DoubleArray values = DoubleArray::ensure(real_array(obj, name, shape));
  if (!values) throw std::invalid_argument(std::string(name) + " cannot be read as float64");
  std::vector<float> out(static_cast<std::size_t>(values.size()));
  const double* data = values.data();
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(data[i]) || std::fabs(data[i]) > FLT_MAX) {
      std::ostringstream msg;
      msg << name << " must be finite float32 values, got " << data[i] << " at flat index "
          << i;
      throw std::invalid_argument(msg.str());
    }
    out[i] = static_cast<float>(data[i]);
  }
  return out;
}

// obj as a bool mask of length n (None allowed when optional).
std::vector<std::uint8_t> bool_mask(py::handle obj, const char* name, py::ssize_t n) {
  py::array a = real_array(obj, name, {n});
  if (a.dtype().kind() != 'b') {
    throw std::invalid_argument(std::string(name) + " must have dtype bool, got " +
                                std::string(py::str(a.dtype())));
  }
  auto mask = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(a);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(n));
  for (py::ssize_t i = 0; i < n; ++i) out[i] = mask.data()[i] ? 1 : 0;
  return out;
}

// A Python int (not bool) that fits in int64.
std::int64_t integer(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr())) {
    throw std::invalid_argument(std::string(name) + " must be an int, got " +
                                std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!value) {  // e.g. an array with more than one element
    PyErr_Clear();
    throw std::invalid_argument(std::string(name) + " must be an int, got " +
                                std::string(py::str(py::repr(obj))).substr(0, 80));
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow != 0) throw std::invalid_argument(std::string(name) + " is out of range");
  return v;
}

float real(py::handle obj, const char* name) { return finite_floats(obj, name, {})[0]; }

py::tuple pair(Vec2 v) { return py::make_tuple(v.x, v.y); }

std::shared_ptr<Maze> make_maze(py::handle walls, py::handle start, py::handle start_heading,
                                py::handle goal, py::handle steps) {
  const py::ssize_t n = real_array(walls, "walls", {-1, 4}).shape(0);
  const std::vector<float> w = finite_floats(walls, "walls", {n, 4});
  MazeSpec spec;
  for (py::ssize_t i = 0; i < n; ++i) {
    spec.walls.push_back({{w[4 * i], w[4 * i + 1]}, {w[4 * i + 2], w[4 * i + 3]}});
  }
  const std::vector<float> s = finite_floats(start, "start", {2});
  const std::vector<float> g = finite_floats(goal, "goal", {2});
  spec.start = {s[0], s[1]};
  spec.goal = {g[0], g[1]};
  spec.start_heading = real(start_heading, "start_heading");
  spec.steps = integer(steps, "steps");
  return std::make_shared<Maze>(std::move(spec));
}

template <typename T>
py::array_t<T> new_array(const std::vector<py::ssize_t>& shape) {
  return py::array_t<T>(shape);
}

py::dict robot_state(const RobotBatch& batch) {
  const auto n = static_cast<py::ssize_t>(batch.size());
  auto position = new_array<float>({n, 2});
  auto heading = new_array<float>({n});
  auto speed = new_array<float>({n});
  auto angular_velocity = new_array<float>({n});
  auto steps = new_array<std::int64_t>({n});
  auto solved = new_array<bool>({n});
  for (py::ssize_t i = 0; i < n; ++i) {
    const Robot& r = batch.robot(static_cast<std::size_t>(i));
    position.mutable_at(i, 0) = r.position.x;
    position.mutable_at(i, 1) = r.position.y;
    heading.mutable_at(i) = r.heading;
    speed.mutable_at(i) = r.speed;
    angular_velocity.mutable_at(i) = r.angular_velocity;
    steps.mutable_at(i) = r.steps;
    solved.mutable_at(i) = r.solved;
  }
  py::dict state;
  state["position"] = position;
  state["heading"] = heading;
  state["speed"] = speed;
  state["angular_velocity"] = angular_velocity;
  state["steps"] = steps;
  state["solved"] = solved;
  return state;
}

void set_robot_state(RobotBatch& batch, const py::dict& state) {
  const auto n = static_cast<py::ssize_t>(batch.size());
  const char* keys[] = {"position", "heading", "speed", "angular_velocity", "steps", "solved"};
  for (const char* key : keys) {
    if (!state.contains(key)) throw std::invalid_argument(std::string("state lacks ") + key);
  }
  const std::vector<float> position = finite_floats(state["position"], "state position", {n, 2});
  const std::vector<float> heading = finite_floats(state["heading"], "state heading", {n});
  const std::vector<float> speed = finite_floats(state["speed"], "state speed", {n});
  const std::vector<float> angular =
      finite_floats(state["angular_velocity"], "state angular_velocity", {n});
  const std::vector<std::uint8_t> solved = bool_mask(state["solved"], "state solved", n);
  const py::array step_array = real_array(state["steps"], "state steps", {n});
  const char kind = step_array.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw std::invalid_argument("state steps must have an integer dtype, got " +
                                std::string(py::str(step_array.dtype())));
  }
  auto steps = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(
      step_array);
  // Validate every robot before changing any.
  std::vector<Robot> robots(static_cast<std::size_t>(n));
  for (py::ssize_t i = 0; i < n; ++i) {
    Robot& r = robots[i];
    r.position = {position[2 * i], position[2 * i + 1]};
    r.heading = heading[i];
    r.speed = speed[i];
    r.angular_velocity = angular[i];
    r.steps = steps.data()[i];
    r.solved = solved[i] != 0;
    smevo::maze::validate_robot(batch.maze(), r);
  }
  for (py::ssize_t i = 0; i < n; ++i) batch.set_robot(static_cast<std::size_t>(i), robots[i]);
}

py::dict robot_status(const RobotBatch& batch) {
  const auto n = static_cast<py::ssize_t>(batch.size());
  auto position = new_array<double>({n, 2});
  auto heading = new_array<double>({n});
  auto solved = new_array<bool>({n});
  auto done = new_array<bool>({n});
  auto steps = new_array<std::int64_t>({n});
  auto breadcrumb = new_array<double>({n});
  auto euclidean = new_array<double>({n});
  for (py::ssize_t i = 0; i < n; ++i) {
    const Robot& r = batch.robot(static_cast<std::size_t>(i));
    position.mutable_at(i, 0) = r.position.x;
    position.mutable_at(i, 1) = r.position.y;
    heading.mutable_at(i) = r.heading;
    solved.mutable_at(i) = r.solved;
    done.mutable_at(i) = batch.done(static_cast<std::size_t>(i));
    steps.mutable_at(i) = r.steps;
    breadcrumb.mutable_at(i) = batch.maze().breadcrumb_distance(r.position);
    euclidean.mutable_at(i) = batch.maze().euclidean_distance(r.position);
  }
  py::dict status;
  status["position"] = position;
  status["heading"] = heading;
  status["solved"] = solved;
  status["done"] = done;
  status["steps"] = steps;
  status["breadcrumb_distance"] = breadcrumb;
  status["euclidean_distance"] = euclidean;
  return status;
}

}  // namespace

PYBIND11_MODULE(_maze, m) {
  m.doc() = "The breadcrumb hard-maze simulator (C++17). Use smevo_envs.maze instead.";
  m.attr("OBSERVATION_SIZE") = kObservationSize;
  m.attr("ACTION_SIZE") = kActionSize;
  m.attr("ROBOT_RADIUS") = smevo::maze::kRobotRadius;
  m.attr("RANGEFINDER_RANGE") = smevo::maze::kRangefinderRange;
  m.attr("GOAL_RADIUS") = smevo::maze::kGoalRadius;
  m.attr("RANGEFINDER_ANGLES") = py::make_tuple(
      smevo::maze::kRangefinderAngles[0], smevo::maze::kRangefinderAngles[1],
      smevo::maze::kRangefinderAngles[2], smevo::maze::kRangefinderAngles[3],
      smevo::maze::kRangefinderAngles[4], smevo::maze::kRangefinderAngles[5]);

  py::class_<Maze, std::shared_ptr<Maze>>(m, "Maze", "An immutable maze with its breadcrumb map.")
      .def(py::init(&make_maze), py::arg("walls"), py::arg("start"), py::arg("start_heading"),
           py::arg("goal"), py::arg("steps"),
           "walls: (n, 4) rows ax, ay, bx, by; start, goal: (x, y); start_heading in degrees;\n"
           "steps: simulator steps per episode. Builds the breadcrumb map (BFS) once.")
      .def_property_readonly(
          "walls",
          [](const Maze& maze) {
            const auto& walls = maze.spec().walls;
            auto out = new_array<float>({static_cast<py::ssize_t>(walls.size()), 4});
            for (std::size_t i = 0; i < walls.size(); ++i) {
              const auto row = static_cast<py::ssize_t>(i);
              out.mutable_at(row, 0) = walls[i].a.x;
              out.mutable_at(row, 1) = walls[i].a.y;
              out.mutable_at(row, 2) = walls[i].b.x;
              out.mutable_at(row, 3) = walls[i].b.y;
            }
            return out;
          },
          "The walls as a fresh (n, 4) float32 array.")
      .def_property_readonly("start", [](const Maze& maze) { return pair(maze.spec().start); })
      .def_property_readonly("start_heading",
                             [](const Maze& maze) { return maze.spec().start_heading; })
      .def_property_readonly("goal", [](const Maze& maze) { return pair(maze.spec().goal); })
      .def_property_readonly("steps", &Maze::steps)
      .def(
          "collides",
          [](const Maze& maze, float x, float y) { return maze.collides({x, y}); },
          py::arg("x"), py::arg("y"), "Whether a robot centred at (x, y) would touch a wall.")
      .def(
          "breadcrumb_distance",
          [](const Maze& maze, float x, float y) { return maze.breadcrumb_distance({x, y}); },
          py::arg("x"), py::arg("y"), "Path distance (grid steps) from (x, y) to the goal.")
      .def(
          "euclidean_distance",
          [](const Maze& maze, float x, float y) { return maze.euclidean_distance({x, y}); },
          py::arg("x"), py::arg("y"), "Straight-line distance from (x, y) to the goal.")
      .def_property_readonly(
          "grid_origin",
          [](const Maze& maze) { return py::make_tuple(maze.grid_x0(), maze.grid_y0()); },
          "Coordinates (x, y) of the breadcrumb grid's cell [0, 0].")
      .def(
          "breadcrumb_grid",
          [](const Maze& maze) {
            auto out = new_array<std::int32_t>({maze.grid_height(), maze.grid_width()});
            std::copy(maze.breadcrumb_grid().begin(), maze.breadcrumb_grid().end(),
                      out.mutable_data());
            return out;
          },
          "Breadcrumb distances as a fresh int32 array [row = y - y0, column = x - x0].")
      .def(
          "free_grid",
          [](const Maze& maze) {
            auto out = new_array<bool>({maze.grid_height(), maze.grid_width()});
            bool* data = out.mutable_data();
            for (std::size_t i = 0; i < maze.free_grid().size(); ++i) {
              data[i] = maze.free_grid()[i] != 0;
            }
            return out;
          },
          "Which grid points a robot may stand on, as a fresh bool array like breadcrumb_grid.");

  py::class_<RobotBatch>(m, "Robots", "N robots in one maze, stepped together in C++.")
      .def(py::init([](std::shared_ptr<Maze> maze, py::handle size) {
             const std::int64_t n = integer(size, "size");
             if (n < 1 || n > (std::int64_t{1} << 24)) {
               throw std::invalid_argument("size must be in [1, 2**24], got " +
                                           std::to_string(n));
             }
             return std::make_unique<RobotBatch>(std::move(maze), static_cast<std::size_t>(n));
           }),
           py::arg("maze"), py::arg("size"), "size robots at the maze's start.")
      .def("__len__", &RobotBatch::size)
      .def_property_readonly(
          "maze",
          [](const RobotBatch& batch) { return std::const_pointer_cast<Maze>(batch.maze_ptr()); })
      .def(
          "reset",
          [](RobotBatch& batch, py::handle mask) {
            if (mask.is_none()) {
              batch.reset(nullptr);
            } else {
              const auto m = bool_mask(mask, "mask", static_cast<py::ssize_t>(batch.size()));
              batch.reset(m.data());
            }
          },
          py::arg("mask") = py::none(),
          "Puts the robots selected by the bool mask (all if None) at the start.")
      .def(
          "step",
          [](RobotBatch& batch, py::handle actions, py::handle frame_skip, py::handle reset_mask) {
            const auto n = static_cast<py::ssize_t>(batch.size());
            const std::vector<float> a = finite_floats(actions, "actions", {n, kActionSize});
            const std::int64_t skip = integer(frame_skip, "frame_skip");
            std::vector<std::uint8_t> mask;
            if (!reset_mask.is_none()) mask = bool_mask(reset_mask, "reset_mask", n);
            py::gil_scoped_release release;
            batch.step(a.data(), skip, mask.empty() ? nullptr : mask.data());
          },
          py::arg("actions"), py::arg("frame_skip") = 1, py::arg("reset_mask") = py::none(),
          "actions: (n, 2) turn, speed (finite; clamped to [0, 1]). Robots selected by\n"
          "reset_mask are reset; the others advance min(frame_skip, steps left) simulator\n"
          "steps. All robots in one call, without the GIL. Raises ValueError on bad input\n"
          "before any robot moves.")
      .def(
          "observations",
          [](const RobotBatch& batch) {
            const auto n = static_cast<py::ssize_t>(batch.size());
            auto out = new_array<float>({n, kObservationSize});
            for (py::ssize_t i = 0; i < n; ++i) {
              std::copy_n(batch.observation(static_cast<std::size_t>(i)), kObservationSize,
                          out.mutable_data(i, 0));
            }
            return out;
          },
          "A fresh (n, 11) float32 array: bias, 6 rangefinders / range, 4 goal radars.")
      .def("status", &robot_status,
           "A dict of fresh arrays: position (n, 2), heading, breadcrumb_distance,\n"
           "euclidean_distance (float64), solved, done (bool), steps (int64).")
      .def("get_state", &robot_state,
           "The exact float32 state: position, heading, speed, angular_velocity, steps, solved.")
      .def("set_state", &set_robot_state, py::arg("state"),
           "Restores a get_state() dict (checked entirely before any robot changes).");
}
