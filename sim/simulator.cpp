// simulate(): validates the program, builds one ChipEngine + SystemC ChipModule per chip and one
// C2cLink channel per cable direction in a fresh SystemC kernel context, runs, and gathers results.
#include "sim/simulator.h"

#include <algorithm>
#include <memory>
#include <tuple>

#include <fmt/format.h>
#include <systemc>

#include "isa/program_io.h"
#include "sim/core/chip_engine.h"
#include "sim/core/tensor_layout.h"
#include "sim/systemc/c2c_link.h"
#include "sim/systemc/chip_module.h"

namespace lpu::sim {

namespace {

std::string where_text(const SimError::Where& w) {
  std::string s = w.source.empty() ? std::string() : w.source + ": ";
  s += fmt::format("cycle {}, chip {}, {} queue {}, instr {} `{}`", w.cycle, w.chip, w.slice, w.queue, w.instr_index, w.instr_text);
  if (!w.stream.empty()) s += fmt::format(", stream {}", w.stream);
  return s;
}

// Gives simulate() its own SystemC kernel context (SystemC cannot elaborate again after
// sc_start in one context) and restores the previous one afterwards. Objects living in the
// context must be destroyed before this guard.
class KernelContext {
 public:
  KernelContext() : prev_cur_(sc_core::sc_curr_simcontext), prev_def_(sc_core::sc_default_global_context) {
    ctx_ = new sc_core::sc_simcontext();
    sc_core::sc_curr_simcontext = ctx_;
    sc_core::sc_default_global_context = ctx_;
  }
  ~KernelContext() {
    delete ctx_;
    sc_core::sc_curr_simcontext = prev_cur_;
    sc_core::sc_default_global_context = prev_def_;
  }
  KernelContext(const KernelContext&) = delete;
  KernelContext& operator=(const KernelContext&) = delete;

 private:
  sc_core::sc_simcontext* prev_cur_;
  sc_core::sc_simcontext* prev_def_;
  sc_core::sc_simcontext* ctx_;
};

void check_inputs(const Program& prog, const SimOptions& opt) {
  for (const auto& [name, bytes] : opt.inputs) {
    const TensorDesc* t = nullptr;
    for (const TensorDesc& d : prog.tensors)
      if (d.name == name) t = &d;
    if (!t) {
      std::string names;
      for (const TensorDesc& d : prog.tensors)
        if (d.role == TensorRole::Input) names += (names.empty() ? "" : ", ") + d.name;
      throw InputError(fmt::format("simulate: input '{}' is not a tensor of the program; its inputs are: {}", name,
                                   names.empty() ? "(none)" : names));
    }
    if (t->role != TensorRole::Input)
      throw InputError(fmt::format("simulate: '{}' is an output tensor of the program, not an input", name));
    const core::TensorLayout lay(*t, 1);
    const uint64_t want = lay.numel * static_cast<uint64_t>(dtype_bytes(t->dtype));
    if (bytes.size() != want)
      throw InputError(fmt::format("simulate: input '{}' has {} bytes; its {} elements of {} need {}", name, bytes.size(),
                                   lay.numel, dtype_name(t->dtype), want));
  }
}

}  // namespace

SimError::SimError(const std::string& rule, const Where& w, const std::string& detail)
    : std::runtime_error(fmt::format("{}: {}: {}", rule, where_text(w), detail)), rule_(rule), where_(w) {}

SimResult simulate(const Program& prog, const ChipConfig& cfg, const SimOptions& opt) {
  validate_program(prog, cfg, "program");
  check_inputs(prog, opt);

  KernelContext kernel;
  std::vector<std::unique_ptr<core::ChipEngine>> engines;
  std::vector<std::unique_ptr<sysc::C2cLink>> links;
  std::vector<std::unique_ptr<sysc::ChipModule>> modules;
  // Kernel objects go before the context (declared first = destroyed last).
  struct Cleanup {
    std::vector<std::unique_ptr<sysc::ChipModule>>& m;
    std::vector<std::unique_ptr<sysc::C2cLink>>& l;
    ~Cleanup() { m.clear(); l.clear(); }
  } cleanup{modules, links};

  const uint32_t nchips = static_cast<uint32_t>(prog.chips.size());
  for (uint32_t c = 0; c < nchips; ++c) engines.push_back(std::make_unique<core::ChipEngine>(cfg, prog, c, opt));

  const bool values = opt.mode == Mode::Functional;
  std::vector<std::vector<bool>> wired(nchips, std::vector<bool>(cfg.c2c_links, false));
  for (size_t i = 0; i < prog.links.size(); ++i) {
    const LinkDesc& d = prog.links[i];
    for (auto [chip, link] : {std::pair{d.chip_a, d.link_a}, std::pair{d.chip_b, d.link_b}}) {
      if (chip >= nchips || link >= cfg.c2c_links)
        throw InputError(fmt::format("program: links[{}]: end (chip {}, link {}) does not exist: chips 0..{}, links 0..{}", i,
                                     chip, link, nchips - 1, cfg.c2c_links - 1));
      if (wired[chip][link])
        throw InputError(fmt::format("program: links[{}]: chip {} link l{} is wired twice", i, chip, link));
      wired[chip][link] = true;
    }
    links.push_back(std::make_unique<sysc::C2cLink>(fmt::format("link{}_ab", i).c_str(), cfg.vector_bytes(), values));
    sysc::C2cLink* ab = links.back().get();
    links.push_back(std::make_unique<sysc::C2cLink>(fmt::format("link{}_ba", i).c_str(), cfg.vector_bytes(), values));
    sysc::C2cLink* ba = links.back().get();
    engines[d.chip_a]->connect_link(d.link_a, ab, ba);
    engines[d.chip_b]->connect_link(d.link_b, ba, ab);
  }

  uint64_t lookahead = UINT64_MAX;
  if (!prog.links.empty()) lookahead = std::max<uint64_t>(1, instr_timing(cfg, make_instr(Opcode::Send)).latency);

  for (auto& e : engines) e->start();
  bool abort = false;
  for (uint32_t c = 0; c < nchips; ++c)
    modules.push_back(std::make_unique<sysc::ChipModule>(fmt::format("chip{}", c).c_str(), *engines[c], lookahead, &abort));

  sc_core::sc_start();
  for (auto& m : modules)
    if (m->error()) std::rethrow_exception(m->error());
  for (auto& e : engines) e->finish();

  SimResult r;
  bool any = false;
  for (auto& e : engines) {
    any = any || e->executed_any();
    r.cycles = std::max(r.cycles, e->end_cycle());
    r.instructions += e->instructions();
    r.chips.push_back(std::move(e->stats()));
  }
  if (any) r.cycles += cfg.stagger_tail();
  else r.cycles = 0;
  for (size_t c = 0; c < engines.size(); ++c) r.chips[c].streams = engines[c]->stream_envelope(r.cycles);

  if (opt.record_trace) {
    for (auto& e : engines) r.trace.insert(r.trace.end(), e->trace().begin(), e->trace().end());
    std::stable_sort(r.trace.begin(), r.trace.end(), [](const TraceEvent& a, const TraceEvent& b) {
      return std::tie(a.issue, a.chip, a.slice, a.queue) < std::tie(b.issue, b.chip, b.slice, b.queue);
    });
  }

  if (values) {
    for (const TensorDesc& t : prog.tensors) {
      if (t.role != TensorRole::Output) continue;
      const core::TensorLayout lay(t, cfg.vector_bytes());
      const int nb = dtype_bytes(t.dtype);
      std::vector<uint8_t> out(lay.numel * static_cast<uint64_t>(nb), 0);
      for (uint64_t e = 0; e < lay.numel; ++e) {
        const uint32_t addr = static_cast<uint32_t>(t.addr + lay.vector_of(e));
        const uint32_t lane = lay.lane_of(e);
        for (int b = 0; b < nb; ++b) {
          const uint8_t* v = engines[t.chip]->sram(t.slices[b]).peek(addr);
          out[e * nb + b] = v ? v[lane] : 0;
        }
      }
      r.outputs[t.name] = std::move(out);
    }
  }
  return r;
}

}  // namespace lpu::sim
