// Step spans grouped into model stages (see stage_spans.h).
#include "compiler/passes/stage_spans.h"

#include <algorithm>

namespace lpu::compiler {

std::string stage_of(const std::string& name) {
  if (!name.empty() && name[0] == '/') {
    const size_t s = name.find('/', 1);
    return s == std::string::npos ? name : name.substr(0, s);
  }
  return name.substr(0, name.find('.'));
}

std::vector<StageSpan> stage_spans(const std::vector<StepSpan>& spans) {
  std::vector<StageSpan> out;
  std::map<std::string, size_t> at;
  uint64_t prev = 0;
  for (const StepSpan& s : spans) {
    const uint64_t added = s.end_after > prev ? s.end_after - prev : 0;
    prev = std::max(prev, s.end_after);
    const std::string st = stage_of(s.name);
    auto it = at.find(st);
    if (it == at.end()) {
      it = at.emplace(st, out.size()).first;
      StageSpan sp;
      sp.name = st;
      out.push_back(std::move(sp));
    }
    StageSpan& a = out[it->second];
    a.steps++;
    a.added += added;
    a.abc += s.abc;
    a.lw += s.lw;
    a.by_kind[s.kind] += added;
  }
  return out;
}

}  // namespace lpu::compiler
