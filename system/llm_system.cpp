// LlmSystem: a step as a timeline of distinct, once-simulated pieces (see llm_system.h).
#include "system/llm_system.h"

#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <set>
#include <tuple>
#include <stdexcept>

#include "compiler/llm/collective.h"
#include "system/start_rule.h"

namespace lpu::system {

namespace {


std::string shape_label(const llm::StepShape& s) {
  return fmt::format("{} B{} T{} C{}", s.phase == llm::Phase::Prefill ? "prefill" : "decode", s.batch, s.tokens,
                     s.context);
}

// ICU cursor after a queue's code (docs/architecture.md "Issue"); compiled code has no sync.
uint64_t end_cursor(const std::vector<Instr>& code, uint64_t start) {
  uint64_t cur = start, last = start;
  for (const Instr& in : code) {
    if (in.op == Opcode::Nop) {
      cur += in.get(Field::Imm);
    } else if (in.op == Opcode::Repeat) {
      cur = last + static_cast<uint64_t>(in.get(Field::Count)) * in.get(Field::Stride) + 1;
    } else if (in.op == Opcode::Sync) {
      throw std::logic_error("concatenate: a piece uses sync; its end cursor is not static");
    } else {
      last = cur;
      cur += 1;
    }
  }
  return cur;
}

}  // namespace

HostTransfer host_transfers(const ChipConfig& chip, const llm::LlmConfig& model, const llm::Plan& plan,
                            const llm::StepShape& shape) {
  if (chip.host_link_bytes_per_s <= 0) return {};
  const double rows = static_cast<double>(shape.batch * shape.tokens);
  auto transfer = [&](double bytes) { return chip.host_link_latency_s + bytes / chip.host_link_bytes_per_s; };
  const double in = rows * static_cast<double>(model.hidden) * 2;
  double out = rows * static_cast<double>(model.hidden) * 2;
  if (model.causal) {
    int64_t head_chips = 1;
    for (const llm::PlanPiece& p : plan.pieces)
      if (p.kind == llm::SegmentKind::LmHead) head_chips = p.tp;
    out = static_cast<double>(shape.batch) * static_cast<double>(model.vocab) * 2 / static_cast<double>(head_chips);
  }
  return HostTransfer{transfer(in), transfer(out)};
}

double host_transfer_seconds(const ChipConfig& chip, const llm::LlmConfig& model, const llm::Plan& plan,
                             const llm::StepShape& shape) {
  return host_transfers(chip, model, plan, shape).total();
}

uint64_t piece_window(const ChipConfig& chip, uint64_t cycles) {
  return cycles == 0 ? 0 : cycles + stream_drain(chip);
}

compiler::CompileOptions piece_compile_options(llm::WeightPrecision p) {
  compiler::CompileOptions co;
  // Per-head weights (o_proj, view copies) keep whole 320-row tiles: the planner's piece_sram_need
  // (llm/partition.cpp) models that layout; packing them needs the planner to mirror it first.
  co.tiling.pack_view_weights = false;
  // Hidden states, partial sums and new KV rows are stored f16, as the next piece, the all-reduce
  // and the cache read them (the functional composition rounded them to f16 anyway); the logits
  // stay f32 for the host.
  co.lower.f16_output = [](const std::string& name) { return name != "logits"; };
  if (p == llm::WeightPrecision::INT8) {
    co.precision = compiler::Precision::INT8;
    co.int8.timing_only = true;
    co.int8.onchip_quantize = true;
    co.int8.allow_no_int8 = true;
    co.int8.layer_filter = [](const std::string&, const std::string& w) { return llm::is_projection_weight(w); };
  }
  return co;
}

LlmSystem::LlmSystem(const ChipConfig& chip, llm::LlmConfig model, llm::Plan plan, SegmentBuilder build,
                     SegmentBuilder fallback, llm::WeightPrecision precision)
    : chip_(chip),
      model_(std::move(model)),
      plan_(std::move(plan)),
      build_(std::move(build)),
      fallback_(std::move(fallback)),
      runner_(chip),
      precision_(precision),
      compile_opt_(piece_compile_options(precision)),
      standin_opt_(compile_opt_) {
  standin_opt_.int8.layer_filter = nullptr;
  if (!build_) {
    const llm::LlmConfig m = model_;
    build_ = [m](const llm::SegmentSpec& s, int64_t layer) { return llm::build_segment(m, s, layer); };
  }
}

StepResult LlmSystem::step(const llm::StepShape& shape) {
  StepResult res;
  res.shape = shape;
  const int64_t rows = shape.batch * shape.tokens;
  const int64_t tp = plan_.tp;
  std::map<uint64_t, size_t> use_index;
  // Each piece starts when the previous one has ended (ready: its data is there) and its chips'
  // stream values of earlier pieces are out of its way (ChipClock, start_rule.h); the wait is
  // charged to the previous piece's class.
  ChipClock clock(chip_);
  uint64_t ready = 0;
  TimeClass last_class = TimeClass::OnChip;
  auto start_at = [&](const std::vector<ChipRun>& runs) {
    const uint64_t o = clock.earliest(runs, ready);
    (last_class == TimeClass::C2C ? res.c2c_cycles : res.onchip_cycles) += o - ready;
    clock.place(runs, o);
    return o;
  };
  auto add_use = [&](const PieceRun& pr, int64_t instances, bool collective) -> PieceUse& {
    auto it = use_index.find(pr.hash);
    if (it == use_index.end()) {
      PieceUse u;
      u.label = pr.label;
      u.hash = pr.hash;
      u.chips = pr.chips;
      u.cycles = pr.cycles;
      u.compute_cycles = pr.compute_cycles;
      u.dynamic_j = pr.dynamic_j;
      u.collective = collective;
      u.streams = pr.streams;
      it = use_index.emplace(pr.hash, res.pieces.size()).first;
      res.pieces.push_back(u);
    }
    PieceUse& u = res.pieces[it->second];
    u.instances += instances;
    res.dynamic_j += pr.dynamic_j * static_cast<double>(instances);
    for (size_t k = 0; k < res.events.size(); ++k) res.events[k] += pr.events[k] * static_cast<uint64_t>(instances);
    return u;
  };
  for (size_t s = 0; s < plan_.stages.size(); ++s) {
    const uint32_t base = static_cast<uint32_t>(static_cast<int64_t>(s) * tp);
    for (size_t pi : plan_.stages[s].pieces) {
      const llm::PlanPiece& pp = plan_.pieces[pi];
      // The piece on every rank: rank 0 (adds the residual) and, if tp > 1, rank 1 standing for
      // ranks 1..tp-1 (same shapes, zero weights: the same program).
      uint64_t cycles = 0, compute = 0;
      std::vector<uint64_t> seen;
      std::vector<ChipRun> runs;             // every rank's chip
      std::vector<TimelineEntry> entries;    // offsets set once the start is known
      for (int64_t rank = 0; rank < std::min<int64_t>(pp.tp, 2); ++rank) {
        llm::SegmentSpec spec;
        spec.kind = pp.kind;
        spec.shape = shape;
        spec.shard = llm::Shard{pp.part * pp.tp + rank, pp.shard_size};
        spec.fill = llm::WeightFill::Zero;
        spec.position = shape.context;
        spec.o_proj_cast = precision_ == llm::WeightPrecision::INT8;  // o_proj int8 too (segments.h)
        spec.norm_only = pp.norm_only;  // an encoder's output LayerNorm
        // Every layer's graph has the operations of its representative layer's (weights are zero);
        // where layers differ (bert's attention: layer 0 has no leading LayerNorm) the label says which.
        const int64_t layer = pp.kind == llm::SegmentKind::LmHead ? 0 : llm::representative_layer(model_, pp.kind, pp.layer);
        const bool by_layer = pp.kind != llm::SegmentKind::LmHead && llm::representative_layer(model_, pp.kind, 1) != 0;
        const std::string kind = pp.norm_only ? "output LayerNorm" : llm::segment_kind_name(pp.kind);
        const std::string label =
            std::string(by_layer ? (layer == 0 ? "layer 0 " : "layers 1+ ") : "") +
            (pp.shard_size != pp.tp
                 ? fmt::format("{} {} part {} of {} over tp{}", kind, shape_label(shape), pp.part + 1,
                               pp.shard_size / pp.tp, pp.tp)
                 : fmt::format("{} {} tp{} rank{}", kind, shape_label(shape), pp.tp, rank == 0 ? "0" : "1+"));
        // Compile key: everything the graph depends on. Ffn and LM head graphs see only the B*T rows
        // (no cache, no position), so one compile serves every step with the same rows.
        const std::string key =
            (pp.kind == llm::SegmentKind::Attention
                 ? label + fmt::format(" rank{} pos{}", spec.shard.rank, spec.position)
                 : fmt::format("{} rows {} shard {}/{}", kind, rows, spec.shard.rank, spec.shard.size)) +
            fmt::format(" graph of layer {}", layer);
        const PieceRun* prp = nullptr;
        auto failed = failed_.find(key);
        if (failed == failed_.end()) {
          try {
            prp = &runner_.run_graph(key, [&] { return build_(spec, layer); }, label, compile_opt_);
          } catch (const InputError& e) {
            if (!fallback_) throw;
            failed = failed_.emplace(key, e.what()).first;
          }
        }
        if (!prp) {
          const std::string sl = "STAND-IN " + label;
          prp = &runner_.run_graph("standin " + key, [&] { return fallback_(spec, layer); }, sl, standin_opt_);
          const std::string why = sl + ": " + failed->second;
          if (std::find(res.standins.begin(), res.standins.end(), why) == res.standins.end())
            res.standins.push_back(why);
        }
        const PieceRun& pr = *prp;
        const int64_t instances = rank == 0 ? 1 : pp.tp - 1;
        PieceUse& u = add_use(pr, instances, false);
        if (std::find(seen.begin(), seen.end(), pr.hash) == seen.end()) u.count += 1;  // one start per piece
        seen.push_back(pr.hash);
        TimelineEntry e;
        e.hash = pr.hash;
        for (int64_t r = rank; r < (rank == 0 ? 1 : pp.tp); ++r) {
          TimelineEntry er = e;
          er.chips = {base + static_cast<uint32_t>(r)};
          entries.push_back(er);
          runs.push_back({base + static_cast<uint32_t>(r), pr.cycles, &pr.streams.at(0)});
        }
        if (pr.cycles > cycles || (pr.cycles == cycles && pr.compute_cycles > compute)) {
          cycles = pr.cycles;
          compute = pr.compute_cycles;
        }
      }
      const uint64_t o = start_at(runs);
      for (TimelineEntry& e : entries) {
        e.offset = o;
        res.timeline.push_back(std::move(e));
      }
      res.compute_cycles += compute;
      res.onchip_cycles += cycles - compute;
      last_class = TimeClass::OnChip;
      ready = o + cycles;
      if (pp.kind != llm::SegmentKind::LmHead && tp > 1) {
        const std::string label = fmt::format("all-reduce [{}, {}] over {} chips", rows, model_.hidden, tp);
        llm::CollectiveProgram cp = llm::compile_allreduce(rows, model_.hidden, tp, chip_);
        const PieceRun& pr = runner_.run_program(cp.program, label, &cp.predicted_streams);
        PieceUse& u = add_use(pr, 1, true);
        u.count += 1;
        TimelineEntry e;
        e.hash = pr.hash;
        std::vector<ChipRun> ar;
        for (int64_t r = 0; r < tp; ++r) {
          e.chips.push_back(base + static_cast<uint32_t>(r));
          ar.push_back({e.chips.back(), pr.cycles, &pr.streams.at(static_cast<size_t>(r))});
        }
        e.offset = start_at(ar);
        res.timeline.push_back(e);
        res.c2c_cycles += pr.cycles;
        last_class = TimeClass::C2C;
        ready = e.offset + pr.cycles;
      }
    }
    if (s + 1 < plan_.stages.size()) {
      const std::string label = fmt::format("handoff [{}, {}] to the next stage", rows, model_.hidden);
      llm::CollectiveProgram cp = llm::compile_handoff(rows, model_.hidden, tp, chip_);
      const PieceRun& pr = runner_.run_program(cp.program, label, &cp.predicted_streams);
      PieceUse& u = add_use(pr, tp, true);
      u.count += 1;
      std::vector<ChipRun> ho;  // each pair: this stage's chip sends, the next stage's receives
      for (int64_t r = 0; r < tp; ++r) {
        ho.push_back({base + static_cast<uint32_t>(r), pr.cycles, &pr.streams.at(0)});
        ho.push_back({base + static_cast<uint32_t>(tp + r), pr.cycles, &pr.streams.at(1)});
      }
      const uint64_t o = start_at(ho);
      for (int64_t r = 0; r < tp; ++r) {
        TimelineEntry e;
        e.hash = pr.hash;
        e.offset = o;
        e.chips = {base + static_cast<uint32_t>(r), base + static_cast<uint32_t>(tp + r)};
        res.timeline.push_back(e);
      }
      res.c2c_cycles += pr.cycles;
      last_class = TimeClass::C2C;
      ready = o + pr.cycles;
    }
  }
  res.cycles = ready;  // the step ends when its last piece ends
  const HostTransfer host = host_transfers(chip_, model_, plan_, shape);
  res.host_seconds = host.total();
  res.host_link_seconds = std::max(host.in_s, host.out_s);
  res.seconds = static_cast<double>(res.cycles) / chip_.clock_hz + res.host_seconds;
  res.static_j = chip_.static_power_w * static_cast<double>(plan_.chips) * res.seconds;
  res.energy_j = res.dynamic_j + res.static_j;
  return res;
}

Program concatenate(const std::vector<TimelineEntry>& timeline, const PieceRunner& runner, uint32_t chips,
                    const ChipConfig& chip) {
  Program out;
  out.config_name = chip.name;
  out.num_chips = chips;
  out.chips.resize(chips);
  // Per chip, per (slice, queue): code so far and its ICU cursor.
  std::vector<std::map<std::pair<uint16_t, uint8_t>, std::pair<std::vector<Instr>, uint64_t>>> q(chips);
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>> links;
  std::map<std::vector<uint16_t>, uint32_t> map_index;  // SXM lane maps of all pieces, deduplicated
  uint64_t end = 0;
  for (const TimelineEntry& e : timeline) {
    const Program& p = runner.program(e.hash);
    if (e.chips.size() != p.num_chips) throw std::logic_error("concatenate: chip map does not match the program");
    // The piece's map m is the whole program's map remap[m] (permute/distribute name maps by index).
    std::vector<uint32_t> remap(p.maps.size());
    for (size_t m = 0; m < p.maps.size(); ++m) {
      auto [it, added] = map_index.emplace(p.maps[m], static_cast<uint32_t>(out.maps.size()));
      if (added) out.maps.push_back(p.maps[m]);
      remap[m] = it->second;
    }
    for (uint32_t pc = 0; pc < p.num_chips; ++pc) {
      const uint32_t g = e.chips[pc];
      for (const QueueCode& qc : p.chips[pc].queues) {
        auto& [code, cur] = q[g][{qc.slice, qc.queue}];
        if (cur > e.offset)
          throw std::logic_error(fmt::format("concatenate: chip {} queue {}.{} still busy at cycle {} (cursor {})", g,
                                             qc.slice, qc.queue, e.offset, cur));
        for (uint64_t gap = e.offset - cur; gap > 0;) {
          const uint64_t k = std::min<uint64_t>(gap, 0xFFFFFFFFull);
          Instr nop = make_instr(Opcode::Nop);
          nop.set(Field::Imm, static_cast<uint32_t>(k));
          code.push_back(nop);
          gap -= k;
        }
        for (Instr in : qc.code) {
          if (in.op == Opcode::Permute || in.op == Opcode::Distribute) {
            const uint32_t m = in.get(Field::Imm);
            if (m < remap.size()) in.set(Field::Imm, remap[m]);  // else (0xFFFF...) left as is: the simulator names it
          }
          code.push_back(in);
        }
        cur = end_cursor(qc.code, e.offset);
      }
    }
    for (const LinkDesc& l : p.links)
      links.insert({e.chips[l.chip_a], l.link_a, e.chips[l.chip_b], l.link_b});
    end = std::max(end, e.offset + p.predicted_cycles);
  }
  for (uint32_t c = 0; c < chips; ++c)
    for (auto& [key, v] : q[c]) out.chips[c].queues.push_back(QueueCode{key.first, key.second, std::move(v.first)});
  for (const auto& [a, la, b, lb] : links) out.links.push_back(LinkDesc{a, la, b, lb});
  out.predicted_cycles = end;
  return out;
}

}  // namespace lpu::system
