// Golden-report comparison for `lpusim regress` (sweep/regress.h).
#include "sweep/regress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace lpu::sweep {

namespace {

using ojson = nlohmann::ordered_json;

void flatten(const ojson& j, const std::string& prefix, std::vector<std::pair<std::string, const ojson*>>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) flatten(j[i], prefix + "." + std::to_string(i), out);
  } else {
    out.emplace_back(prefix, &j);
  }
}

bool is_cycle_path(const std::string& path) {
  const size_t dot = path.rfind('.');
  const std::string last = dot == std::string::npos ? path : path.substr(dot + 1);
  return last == "cycles" || (last.size() > 7 && last.compare(last.size() - 7, 7, "_cycles") == 0);
}

std::string text_of(const ojson& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

RegressResult compare_reports(const ojson& golden, const ojson& current, double tol) {
  std::vector<std::pair<std::string, const ojson*>> g, c;
  flatten(golden, "", g);
  flatten(current, "", c);
  std::map<std::string, const ojson*> cur;
  for (const auto& kv : c) cur.emplace(kv.first, kv.second);
  std::map<std::string, bool> in_golden;
  RegressResult r;
  for (const auto& [path, gv] : g) {
    in_golden[path] = true;
    ++r.compared;
    FigureDiff d;
    d.path = path;
    d.is_cycles = is_cycle_path(path);
    d.golden = text_of(*gv);
    auto it = cur.find(path);
    if (it == cur.end()) {
      d.current = "(absent)";
      d.fails = true;
      d.why = "missing from the current report";
      r.moved.push_back(d);
      continue;
    }
    const ojson& cv = *it->second;
    if (cv == *gv) continue;
    d.current = text_of(cv);
    if (gv->is_number() && cv.is_number()) {
      const double a = gv->get<double>(), b = cv.get<double>();
      if (gv->is_number_integer() && cv.is_number_integer()) {
        const long long ai = gv->get<long long>(), bi = cv.get<long long>();
        d.delta = fmt::format("{:+d}", bi - ai);
      } else {
        d.delta = fmt::format("{:+.6g}", b - a);
      }
      const double pct = a != 0 ? (b - a) / std::fabs(a) * 100.0 : NAN;
      if (a != 0) d.percent = fmt::format("{:+.3f}%", pct);
      if (d.is_cycles) {
        d.fails = true;
        d.why = "cycle count changed";
      } else if (tol < 0) {
        d.fails = true;
        d.why = "changed (exact comparison)";
      } else if (a == 0 || std::fabs(pct) > tol) {
        d.fails = true;
        d.why = fmt::format("beyond the {}% tolerance", tol);
      } else {
        d.why = fmt::format("within the {}% tolerance", tol);
      }
    } else {
      d.fails = true;
      d.why = d.is_cycles ? "cycle count changed" : "changed";
    }
    r.moved.push_back(d);
  }
  for (const auto& [path, cv] : c) {
    if (in_golden.count(path)) continue;
    FigureDiff d;
    d.path = path;
    d.is_cycles = is_cycle_path(path);
    d.golden = "(absent)";
    d.current = text_of(*cv);
    d.why = "new key (not in the golden report)";
    r.moved.push_back(d);
  }
  for (const FigureDiff& d : r.moved) r.failed = r.failed || d.fails;
  return r;
}

std::string regress_text(const RegressResult& r, const std::string& golden_name, const std::string& current_name,
                         double tol) {
  std::string o = fmt::format("regress: golden {} vs current {}\n", golden_name, current_name);
  size_t failing = 0;
  for (const FigureDiff& d : r.moved) failing += d.fails;
  if (r.moved.empty()) {
    o += fmt::format("identical: all {} figures equal\n", r.compared);
    return o;
  }
  size_t w0 = 6, w1 = 6, w2 = 7, w3 = 5, w4 = 1;
  for (const FigureDiff& d : r.moved) {
    w0 = std::max(w0, d.path.size());
    w1 = std::max(w1, d.golden.size());
    w2 = std::max(w2, d.current.size());
    w3 = std::max(w3, d.delta.size());
    w4 = std::max(w4, d.percent.size());
  }
  auto row = [&](const std::string& a, const std::string& b, const std::string& c, const std::string& dd,
                 const std::string& e, const std::string& f) {
    std::string line = fmt::format("{:<{}}  {:>{}}  {:>{}}  {:>{}}  {:>{}}  {}", a, w0, b, w1, c, w2, dd, w3, e, w4, f);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    o += line + "\n";
  };
  row("figure", "golden", "current", "delta", "%", "verdict");
  for (const FigureDiff& d : r.moved) row(d.path, d.golden, d.current, d.delta, d.percent, (d.fails ? "FAIL: " : "ok: ") + d.why);
  size_t cycle_changes = 0;
  for (const FigureDiff& d : r.moved) cycle_changes += d.fails && d.is_cycles;
  o += fmt::format("{} of {} figures moved; {} fail ({} cycle counts){}: {}\n", r.moved.size(), r.compared, failing,
                   cycle_changes, tol >= 0 ? fmt::format("; tolerance {}% for non-cycle figures", tol) : "",
                   r.failed ? "FAIL" : "PASS");
  return o;
}

}  // namespace lpu::sweep
