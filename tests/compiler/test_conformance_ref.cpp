// Conformance harness: walks the ONNX backend node tests (Debian package libonnx-testdata) and
// reports how many import and match the reference interpreter within the fp32 error bound.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "compiler/frontends/onnx_import.h"
#include "compiler/reference/error_bound.h"
#include "isa/chip_config.h"

namespace fs = std::filesystem;
namespace ir = lpu::ir;
namespace ref = lpu::ref;
namespace frontend = lpu::frontend;

namespace {
constexpr const char* kNodeTests = "/usr/share/libonnx-testdata/data/node";

enum class Outcome { Match, Mismatch, Rejected, NoData };

struct Result {
  Outcome outcome;
  std::string detail;
};

// Imports one node test and compares the reference interpreter's outputs with the expected ones:
// |ref - expected| <= bound + one fp32 ulp of the expected value (expected values were computed by
// numpy, possibly in float64, and rounded once when stored); integer outputs must match exactly.
// Cases whose parameters (Reshape shape, Slice starts, axes, ...) are graph inputs are retried with
// the integer inputs bound to their test values as constants, as an exporter would have written them.
Result run_case(const fs::path& dir) {
  const fs::path data = dir / "test_data_set_0";
  std::map<std::string, ref::Value> test_inputs;
  std::vector<ref::Value> want;
  auto load_data = [&]() -> std::string {  // returns an error text, empty on success
    try {
      for (int k = 0; fs::exists(data / ("input_" + std::to_string(k) + ".pb")); ++k) {
        std::string name;
        auto v = frontend::load_onnx_tensor_file((data / ("input_" + std::to_string(k) + ".pb")).string(), &name);
        test_inputs[name] = std::move(v);
      }
      for (int k = 0; fs::exists(data / ("output_" + std::to_string(k) + ".pb")); ++k)
        want.push_back(frontend::load_onnx_tensor_file((data / ("output_" + std::to_string(k) + ".pb")).string()));
    } catch (const lpu::InputError& e) {
      return e.what();
    }
    return "";
  };
  ir::Graph g;
  try {
    g = frontend::import_onnx((dir / "model.onnx").string());
  } catch (const lpu::InputError& e) {
    if (std::string(e.what()).find("compile-time constant") == std::string::npos) return {Outcome::Rejected, e.what()};
    const std::string err = load_data();
    if (!err.empty()) return {Outcome::NoData, err};
    frontend::OnnxImportOptions o;
    for (const auto& [name, v] : test_inputs)
      if (!ir::dtype_is_float(v.dtype)) o.constant_inputs[name] = v;
    try {
      g = frontend::import_onnx((dir / "model.onnx").string(), o);
    } catch (const lpu::InputError& e2) {
      return {Outcome::Rejected, e2.what()};
    }
  }
  if (want.empty()) {
    const std::string err = load_data();
    if (!err.empty()) return {Outcome::NoData, err};
  }
  std::vector<ref::Value> inputs;
  for (auto t : g.inputs()) {
    auto it = test_inputs.find(g.tensor(t).name);
    if (it == test_inputs.end()) return {Outcome::NoData, "no test value for input '" + g.tensor(t).name + "'"};
    inputs.push_back(it->second);
  }
  if (want.size() != g.outputs().size()) return {Outcome::NoData, "test data has " + std::to_string(want.size()) + " outputs"};
  std::vector<ref::Value> bounds, got;
  try {
    got = ref::run_with_error_bound(g, inputs, &bounds);
  } catch (const lpu::InputError& e) {
    return {Outcome::Rejected, std::string("run: ") + e.what()};
  }
  for (size_t k = 0; k < got.size(); ++k) {
    if (got[k].shape != want[k].shape || ir::dtype_is_float(got[k].dtype) != ir::dtype_is_float(want[k].dtype))
      return {Outcome::Mismatch, "output " + std::to_string(k) + " shape/type differs"};
    for (int64_t e = 0; e < want[k].elements(); ++e) {
      if (!ir::dtype_is_float(want[k].dtype)) {
        if (got[k].i[e] != want[k].i[e]) return {Outcome::Mismatch, "output " + std::to_string(k) + " element " + std::to_string(e)};
        continue;
      }
      const double w = want[k].f[e], r = got[k].f[e];
      if (std::isnan(w) && std::isnan(r)) continue;
      if (w == r) continue;  // includes equal infinities
      const double tol = bounds[k].f[e] + std::ldexp(std::fabs(w), -23);
      if (!(std::fabs(r - w) <= tol))
        return {Outcome::Mismatch, "output " + std::to_string(k) + " element " + std::to_string(e) + ": got " +
                                       std::to_string(r) + ", want " + std::to_string(w) + ", bound " + std::to_string(tol)};
    }
  }
  return {Outcome::Match, ""};
}
}  // namespace

TEST_CASE("conformance: ONNX node tests import and match the reference interpreter") {
  if (!fs::is_directory(kNodeTests))
    FAIL(std::string(kNodeTests) + " is missing: install libonnx-testdata (scripts/install-deps.sh)");
  std::vector<fs::path> dirs;
  for (const auto& d : fs::directory_iterator(kNodeTests))
    if (fs::exists(d.path() / "model.onnx")) dirs.push_back(d.path());
  std::sort(dirs.begin(), dirs.end());
  std::map<Outcome, int> count;
  std::string mismatches;
  const std::string report_path = std::string(LPU_BINARY_DIR) + "/conformance_ref.txt";
  std::ofstream report(report_path);
  for (const auto& d : dirs) {
    const Result r = run_case(d);
    ++count[r.outcome];
    const char* tag = r.outcome == Outcome::Match ? "match" : r.outcome == Outcome::Mismatch ? "MISMATCH"
                      : r.outcome == Outcome::Rejected ? "rejected" : "nodata";
    report << d.filename().string() << "\t" << tag << "\t" << r.detail << "\n";
    if (r.outcome == Outcome::Mismatch) mismatches += d.filename().string() + ": " + r.detail + "\n";
  }
  WARN("ONNX node tests: " << dirs.size() << " cases, " << count[Outcome::Match] << " match, "
                           << count[Outcome::Mismatch] << " mismatch, " << count[Outcome::Rejected] << " rejected with InputError, "
                           << count[Outcome::NoData] << " without usable test data; per-case list in " << report_path);
  INFO(mismatches);
  // Every case either imports and matches, or is rejected with an InputError (an unsupported op or
  // form); a case that imports but computes a different result is a bug.
  CHECK(count[Outcome::Mismatch] == 0);
  CHECK(dirs.size() > 500);
}
