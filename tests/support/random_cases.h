// The seeded random-model tests (tests/compiler/test_random_graphs.cpp, test_random_cnns.cpp):
// the generators' shared part (RandomModelBuilder) and their loop, run_random_cases: seeds [first, last] (or 1..N when the environment variable `env` = N is
// set), each case built and checked by `run_case(seed, &text)` (which sets `text` to the model's
// description first). An InputError counts as a refusal (the compiler named a form it does not
// lower; reported with the model), any other exception fails the test with the seed and the
// model. At least `min_share` of the cases must compile (the generator builds supported forms).
#pragma once
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "tests/support/f16_data.h"

#include "isa/chip_config.h"

namespace lpu::test {

// A random model under construction: the graph, its inputs' values and a one-line-per-op text for
// failure messages (RandomModelBuilder::add writes it).
struct RandomModel {
  ir::Graph g;
  std::vector<std::vector<float>> inputs;
  std::string text;
};

// What the random-model generators share: a seeded draw, fresh tensor names ("t<n>", "c<n>",
// "n<n>" for ops), seeded f16 constants, and the pool of tensors built so far (add() appends).
class RandomModelBuilder {
 protected:
  RandomModelBuilder(uint32_t seed, const std::string& name) : rng_(seed), seed_(seed) {
    m_.g.name = name + std::to_string(seed);
  }
  int64_t pick(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  bool coin(int one_in) { return pick(1, one_in) == 1; }
  const ir::Shape& shape(ir::TensorId t) const { return m_.g.tensor(t).shape; }
  std::string name(ir::TensorId t) const { return m_.g.tensor(t).name + ir::shape_str(shape(t)); }
  void note(const std::string& s) { m_.text += s + "\n"; }
  ir::TensorId out(const ir::Shape& s) { return m_.g.add_tensor("t" + std::to_string(next_++), ir::DType::F16, s); }
  ir::TensorId constant(const ir::Shape& s, float lo, float hi) {
    const int id = next_++;  // one statement each: the order of the two uses is then defined
    return m_.g.add_constant("c" + std::to_string(id), ir::DType::F16, s,
                             f16_bytes(random_f16(ir::num_elements(s), lo, hi, seed_ * 31 + id)));
  }
  std::string op_name() { return "n" + std::to_string(next_++); }
  // Adds op (writing y) to the graph, its line to the text and y to the pool.
  void add(ir::Op op, ir::TensorId y) {
    std::ostringstream os;
    os << ir::op_kind_name(op.kind) << "(";
    for (size_t i = 0; i < op.inputs.size(); ++i) os << (i ? ", " : "") << name(op.inputs[i]);
    os << ")";
    for (const char* a : {"kernel_shape", "strides", "pads"})
      if (op.has(a)) os << " " << a << ir::shape_str(op.attr_ints(a));
    os << " -> " << name(y);
    note(os.str());
    m_.g.add_op(std::move(op));
    pool_.push_back(y);
  }

  std::mt19937 rng_;
  uint32_t seed_;
  RandomModel m_;
  std::vector<ir::TensorId> pool_;
  int next_ = 0;
};

template <class Case>
void run_random_cases(const char* env, uint32_t first, uint32_t last, double min_share, Case run_case) {
  if (const char* n = std::getenv(env)) {
    first = 1;
    last = static_cast<uint32_t>(std::strtoul(n, nullptr, 10));
  }
  uint32_t compiled = 0, refused = 0;
  for (uint32_t seed = first; seed <= last; ++seed) {
    std::string text;
    try {
      run_case(seed, &text);
      ++compiled;
    } catch (const InputError& e) {
      ++refused;
      UNSCOPED_INFO("seed " << seed << " refused: " << e.what() << "\n" << text);
    } catch (const std::exception& e) {
      FAIL("seed " << seed << ": not an InputError: " << e.what() << "\n" << text);
    }
  }
  INFO("compiled " << compiled << ", refused " << refused);
  CHECK(compiled >= min_share * (last + 1 - first));
}

}  // namespace lpu::test
