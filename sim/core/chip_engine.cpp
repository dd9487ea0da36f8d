// ChipEngine construction (load-time checks, resource binding), the event loop, stream access
// helpers and error reporting. Unit semantics live in sim/units/<unit>.cpp.
#include "sim/core/chip_engine.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include <fmt/format.h>

#include "sim/core/tensor_layout.h"

namespace lpu::sim::core {

namespace {

// Classes whose instructions only steer the instruction stream (no data, no landing state).
bool is_control_class(SchedClass c) {
  switch (c) {
    case SchedClass::IcuNop:
    case SchedClass::IcuCtrl:
    case SchedClass::IcuSync:
    case SchedClass::C2cDeskew:
      return true;
    default:
      return false;
  }
}

bool float_only(Opcode op) {
  switch (op) {
    case Opcode::Div: case Opcode::Tanh: case Opcode::Exp: case Opcode::Log: case Opcode::Sqrt:
    case Opcode::Rsqrt: case Opcode::Recip: case Opcode::Sigmoid: case Opcode::Erf:
      return true;
    default:
      return false;
  }
}

}  // namespace

ChipEngine::ChipEngine(const ChipConfig& cfg, const Program& prog, uint32_t chip, const SimOptions& opt)
    : cfg_(cfg), prog_(prog), chip_(chip), opt_(opt), functional_(opt.mode == Mode::Functional),
      lanes_(cfg.vector_bytes()), streams_(cfg.streams_per_direction) {
  // Same-cycle visibility needs every data-producing class to land at least one cycle after issue.
  for (int c = 0; c < kNumSchedClasses; ++c) {
    const SchedClass sc = static_cast<SchedClass>(c);
    if (!is_control_class(sc) && cfg.timing[c].latency == 0)
      throw InputError(fmt::format("{}: timing.{}.latency: the simulator needs latency >= 1 for classes that produce data or land state; got 0",
                                   cfg.source, sched_info(sc).key));
  }

  sram_.resize(cfg.slices.size());
  mxm_.resize(cfg.slices.size());
  for (size_t s = 0; s < cfg.slices.size(); ++s) {
    if (cfg.slices[s].kind == SliceKind::MEM) sram_[s].init(cfg.sram_addresses, lanes_, functional_);
    if (cfg.slices[s].kind == SliceKind::MXM) {
      mxm_[s].resize(cfg.mxm_planes);
      for (auto& p : mxm_[s]) p.init(lanes_, cfg.mxm_acc_rows, functional_);
    }
  }
  links_.resize(cfg.c2c_links);

  uint32_t max_lat = 1;
  for (const TimingEntry& te : cfg.timing) max_lat = std::max(max_lat, te.latency);
  streams_file_.init(cfg.num_positions(), streams_, lanes_, max_lat, functional_);

  const ChipCode& cc = prog.chips[chip];
  queues_.resize(cc.queues.size());
  for (size_t qi = 0; qi < cc.queues.size(); ++qi) {
    const QueueCode& qc = cc.queues[qi];
    EngineQueue& q = queues_[qi];
    q.code = &qc.code;
    q.slice = qc.slice;
    q.queue = qc.queue;
    q.qc_index = static_cast<uint32_t>(qi);
    q.position = cfg.slices[qc.slice].position;
    q.dec.resize(qc.code.size());
    for (size_t i = 0; i < qc.code.size(); ++i) {
      const Instr& in = qc.code[i];
      const OpInfo& oi = op_info(in.op);
      auto bad = [&](const std::string& what) {
        return InputError(fmt::format("program: chip {}, queue entry {} ({} queue {}), instruction {} `{}`: {}", chip, qi,
                                      cfg.slices[qc.slice].name, qc.queue, i, format_instr(in), what));
      };
      // Load-time preconditions of the engine (validate_program checks the rest).
      const uint32_t reps = (i + 1 < qc.code.size() && qc.code[i + 1].op == Opcode::Repeat)
                                ? qc.code[i + 1].get(Field::Count) : 0;
      if (oi.unit != Unit::ICU && oi.unit != slice_unit(cfg.slices[qc.slice].kind))
        throw bad(fmt::format("a {} instruction cannot run on a {} slice", unit_name(oi.unit), slice_kind_name(cfg.slices[qc.slice].kind)));
      if (in.op == Opcode::Repeat && (i == 0 || op_info(qc.code[i - 1].op).unit == Unit::ICU))
        throw bad("repeat must follow a non-ICU instruction");
      if (float_only(in.op) && !dtype_is_float(in.dtype()))
        throw bad(fmt::format("{} needs a float dtype (f16 or f32); got {}", oi.mnemonic, dtype_name(in.dtype())));
      for (Field f : {Field::Dst, Field::SrcA, Field::SrcB, Field::SrcC}) {
        if (!(oi.used_fields & (1u << static_cast<int>(f)))) continue;
        const StreamRef s = StreamRef::decode(in.get(f));
        if (static_cast<uint32_t>(s.index + stream_group_size(in, f)) > streams_)
          throw bad(fmt::format("stream group {} for '{}' spans {} streams, beyond the {} streams per direction",
                                stream_name(s), field_name(f), stream_group_size(in, f), streams_));
      }
      auto check_range = [&](Field f, uint64_t limit, const char* what) {
        const uint64_t last = static_cast<uint64_t>(in.get(f)) + (oi.step == f ? reps : 0);
        if (last >= limit)
          throw bad(fmt::format("{} {} (after {} repeat steps) is out of range: allowed 0..{}", what, last,
                                oi.step == f ? reps : 0, limit - 1));
      };
      switch (oi.unit) {
        case Unit::MEM: check_range(Field::Addr, cfg.sram_addresses, "address"); break;
        case Unit::MXM:
          check_range(Field::Plane, cfg.mxm_planes, "plane");
          if (in.op == Opcode::LoadW) check_range(Field::Row, lanes_, "weight row");
          if (in.op == Opcode::Abc || in.op == Opcode::Acc) check_range(Field::Row, cfg.mxm_acc_rows, "accumulator row");
          break;
        case Unit::C2C: check_range(Field::Link, cfg.c2c_links, "link"); break;
        case Unit::SXM:
          if (in.op == Opcode::Permute || in.op == Opcode::Distribute) {
            const uint32_t m = in.get(Field::Imm);
            if (m >= prog.maps.size())
              throw bad(fmt::format("map m{} does not exist: the program has {} maps", m, prog.maps.size()));
            if (prog.maps[m].size() != lanes_)
              throw bad(fmt::format("map m{} has {} entries; a map needs one per lane ({})", m, prog.maps[m].size(), lanes_));
            for (uint16_t e : prog.maps[m])
              if (e != 0xFFFF && e >= lanes_) throw bad(fmt::format("map m{} entry {} is not a lane (0..{}) or 0xFFFF", m, e, lanes_ - 1));
          }
          if (in.op == Opcode::Transpose && lanes_ % 16 != 0)
            throw bad(fmt::format("transpose needs lanes to be a multiple of 16; the chip has {}", lanes_));
          break;
        case Unit::ICU:
        case Unit::VXM: break;
      }
      Decoded& d = q.dec[i];
      d.tm = instr_timing(cfg, in);
      d.unit = oi.unit;
      if (in.op == Opcode::Nop || in.op == Opcode::Repeat || in.op == Opcode::Sync) continue;
      switch (sched_info(oi.sched).resource) {
        case Resource::Queue: d.resource = &q.busy_until; break;
        case Resource::Sram: d.resource = &sram_[qc.slice].port_busy_until; break;
        case Resource::MxmLw: d.resource = &mxm_[qc.slice][in.get(Field::Plane)].lw_busy; break;
        case Resource::MxmIw: d.resource = &mxm_[qc.slice][in.get(Field::Plane)].iw_busy; break;
        case Resource::MxmAbc: d.resource = &mxm_[qc.slice][in.get(Field::Plane)].abc_busy; break;
        case Resource::MxmAcc: d.resource = &mxm_[qc.slice][in.get(Field::Plane)].acc_busy; break;
        case Resource::LinkTx: d.resource = &links_[in.get(Field::Link)].tx_busy; break;
        case Resource::LinkRx: d.resource = &links_[in.get(Field::Link)].rx_busy; break;
      }
    }
  }

  words_ = static_cast<uint32_t>((queues_.size() + 63) / 64);
  if (words_ == 0) words_ = 1;
  wheel_.assign(static_cast<size_t>(kWheel) * words_, 0);
  overflow_.reserve(queues_.size() + 1);
  size_t notifies = 0;
  for (const QueueCode& qc : cc.queues)
    for (const Instr& in : qc.code) notifies += in.op == Opcode::Notify;
  notifies_.reserve(notifies);
  parked_.reserve(queues_.size());
  scratch_.assign(static_cast<size_t>(lanes_) * 16, 0);
  fscratch_.assign(static_cast<size_t>(lanes_) * 3, 0.f);
  iscratch_.assign(static_cast<size_t>(lanes_) * 3, 0);
  stats_.slices.assign(cfg.slices.size(), SliceStats{});
}

void ChipEngine::connect_link(uint32_t link, LinkEndpoint* tx, LinkEndpoint* rx) {
  links_.at(link).tx = tx;
  links_.at(link).rx = rx;
}

void ChipEngine::start() {
  // Links used by the code must be wired.
  for (size_t qi = 0; qi < queues_.size(); ++qi) {
    const auto& code = *queues_[qi].code;
    for (size_t i = 0; i < code.size(); ++i) {
      if (op_info(code[i].op).unit != Unit::C2C) continue;
      const uint32_t l = code[i].get(Field::Link);
      if (!links_[l].tx)
        throw InputError(fmt::format("program: chip {}, queue entry {}, instruction {} `{}`: link l{} of chip {} is not wired in the program's links",
                                     chip_, qi, i, format_instr(code[i]), l, chip_));
    }
  }
  // Initial SRAM image.
  for (const DataBlob& b : prog_.data) {
    if (b.chip != chip_) continue;
    SramSlice& m = sram_[b.slice];
    const uint32_t nvec = static_cast<uint32_t>(b.bytes.size() / lanes_);
    for (uint32_t v = 0; v < nvec; ++v) {
      m.mark_used(b.addr + v);
      if (functional_) std::memcpy(m.vec(b.addr + v), b.bytes.data() + static_cast<size_t>(v) * lanes_, lanes_);
    }
  }
  // Input tensors: their vectors count as preloaded in both modes; values only in functional mode.
  for (const TensorDesc& t : prog_.tensors) {
    if (t.chip != chip_ || t.role != TensorRole::Input) continue;
    const TensorLayout lay(t, lanes_);
    for (uint16_t s : t.slices)
      for (uint64_t v = 0; v < lay.vectors(); ++v) sram_[s].mark_used(static_cast<uint32_t>(t.addr + v));
    if (!functional_) continue;
    auto it = opt_.inputs.find(t.name);
    if (it == opt_.inputs.end()) continue;
    const int nb = dtype_bytes(t.dtype);
    const std::vector<uint8_t>& bytes = it->second;
    for (uint64_t e = 0; e < lay.numel; ++e) {
      const uint32_t addr = static_cast<uint32_t>(t.addr + lay.vector_of(e));
      const uint32_t lane = lay.lane_of(e);
      for (int b = 0; b < nb; ++b) sram_[t.slices[b]].vec(addr)[lane] = bytes[e * nb + b];
    }
  }
  for (uint32_t q = 0; q < queues_.size(); ++q) advance(q);
}

void ChipEngine::refill() {
  while (!overflow_.empty() && overflow_.front().cycle - now_ < kWheel) {
    const Event ev = overflow_.front();
    std::pop_heap(overflow_.begin(), overflow_.end(), std::greater<Event>());
    overflow_.pop_back();
    wheel_[(ev.cycle & (kWheel - 1)) * words_ + (ev.qid >> 6)] |= uint64_t{1} << (ev.qid & 63);
    ++wheel_count_;
  }
}

uint64_t ChipEngine::next_cycle() const {
  if (wheel_count_ == 0) return overflow_.empty() ? UINT64_MAX : overflow_.front().cycle;
  for (uint64_t c = now_;; ++c) {
    const uint64_t* b = &wheel_[(c & (kWheel - 1)) * words_];
    for (uint32_t w = 0; w < words_; ++w)
      if (b[w]) return c;
  }
}

void ChipEngine::run_until(uint64_t horizon) {
  for (;;) {
    if (wheel_count_ == 0) {
      if (overflow_.empty()) return;
      now_ = std::max(now_, overflow_.front().cycle);
      refill();
    }
    if (now_ >= horizon) return;
    uint64_t* b = &wheel_[(now_ & (kWheel - 1)) * words_];
    for (uint32_t w = 0; w < words_;) {
      if (!b[w]) {
        ++w;
        continue;
      }
      const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(b[w]));
      b[w] &= b[w] - 1;
      --wheel_count_;
      issue(w * 64 + bit, now_);
      w = 0;  // an issue may schedule a lower queue id on this same cycle (sync released at once)
    }
    ++now_;
    refill();
  }
}

void ChipEngine::finish() {
  if (!parked_.empty()) {
    const uint32_t qid = *std::min_element(parked_.begin(), parked_.end());
    const EngineQueue& q = queues_[qid];
    cur_q_ = qid;
    cur_pc_ = q.park_pc;
    cur_t_ = q.park_cursor;
    fail("sync-never-released", "",
         fmt::format("the queue parked at cycle {} and no later notify on chip {} released it ({} queue(s) still parked)",
                     q.park_cursor, chip_, parked_.size()));
  }
  count(EnergyEvent::StreamHop, streams_file_.finish_hops());
  uint64_t used = 0;
  for (size_t s = 0; s < sram_.size(); ++s)
    if (cfg_.slices[s].kind == SliceKind::MEM) used += sram_[s].used_count();
  stats_.sram_vectors_used = used;
}

void ChipEngine::issue(uint32_t qid, uint64_t t) {
  EngineQueue& q = queues_[qid];
  const uint32_t pc = q.in_repeat ? q.rep_pc : q.pc;
  const uint32_t step = q.in_repeat ? q.rep_k : 0;
  const Instr& in = (*q.code)[pc];
  const Decoded& d = q.dec[pc];
  cur_q_ = qid;
  cur_pc_ = pc;
  cur_t_ = t;
  cur_pos_ = q.position;

  if (d.resource) {
    if (*d.resource > t) {
      const OpInfo& oi = op_info(in.op);
      std::string res;
      switch (sched_info(oi.sched).resource) {
        case Resource::Queue: res = fmt::format("queue {}", q.queue); break;
        case Resource::Sram: res = "the SRAM port"; break;
        case Resource::MxmLw: res = fmt::format("plane {}'s LW port", in.get(Field::Plane)); break;
        case Resource::MxmIw: res = fmt::format("plane {}'s IW port", in.get(Field::Plane)); break;
        case Resource::MxmAbc: res = fmt::format("plane {}'s ABC port", in.get(Field::Plane)); break;
        case Resource::MxmAcc: res = fmt::format("plane {}'s ACC port", in.get(Field::Plane)); break;
        case Resource::LinkTx: res = fmt::format("link l{} TX", in.get(Field::Link)); break;
        case Resource::LinkRx: res = fmt::format("link l{} RX", in.get(Field::Link)); break;
      }
      fail("unit-busy", "", fmt::format("{} is busy until cycle {} (an earlier instruction's occupancy)", res, *d.resource));
    }
    *d.resource = t + d.tm.occupancy;
  }

  switch (d.unit) {
    case Unit::ICU:
      switch (in.op) {
        case Opcode::Notify: exec_notify(t); break;
        case Opcode::Ifetch:
        case Opcode::Config: break;  // no data effect
        default: throw std::logic_error(fmt::format("ChipEngine::issue: ICU opcode {} is not issued", op_info(in.op).mnemonic));
      }
      break;
    case Unit::MEM: exec_mem(in, step, t, d.tm); break;
    case Unit::VXM: exec_vxm(in, t, d.tm); break;
    case Unit::MXM: exec_mxm(in, step, t, d.tm); break;
    case Unit::SXM: exec_sxm(in, t, d.tm); break;
    case Unit::C2C: exec_c2c(in, t, d.tm); break;
  }

  ++instructions_;
  SliceStats& ss = stats_.slices[q.slice];
  ++ss.instructions;
  ss.busy_cycles += d.tm.occupancy;
  end_ = std::max(end_, t + d.tm.latency);
  executed_any_ = true;
  if (opt_.record_trace)
    trace_.push_back(TraceEvent{chip_, static_cast<uint16_t>(q.slice), static_cast<uint8_t>(q.queue), in.op, pc, t,
                                d.tm.latency, d.tm.occupancy});
  after_issue(qid, t);
}

// ---- streams --------------------------------------------------------------------------------

StreamEnvelope ChipEngine::stream_envelope(uint64_t cycles) const {
  StreamEnvelope e;
  e.head = streams_file_.head();
  e.tail = streams_file_.tail(cycles);
  return e;
}

void ChipEngine::read_group(StreamRef s, int n, uint64_t t, const uint8_t** planes) {
  for (int b = 0; b < n; ++b) {
    const StreamRef sb{s.dir, static_cast<uint8_t>(s.index + b)};
    const uint32_t sid = StreamFile::sid(sb, streams_);
    if (streams_file_.read(sid, cur_pos_, t, &planes[b])) continue;
    const StreamSlot* on = streams_file_.on_diagonal(sid, cur_pos_, t);
    std::string why;
    if (on)
      why = fmt::format("the value on this diagonal was put on the stream at position {} on cycle {} by {} and moves {}, so it never passes position {}",
                        on->pos, on->land, describe(on->prod.queue, on->prod.instr), s.dir == Dir::East ? "east" : "west", cur_pos_);
    else
      why = "no instruction put a value there";
    fail("stream-empty-read", stream_name(sb),
         fmt::format("read of {} at position {} on cycle {} finds no value: {}", stream_name(sb), cur_pos_, t, why));
  }
}

void ChipEngine::write_group(StreamRef s, int n, uint64_t land, uint8_t** planes) {
  const Producer p{cur_q_, cur_pc_, cur_t_};
  for (int b = 0; b < n; ++b) {
    const StreamRef sb{s.dir, static_cast<uint8_t>(s.index + b)};
    const uint32_t sid = StreamFile::sid(sb, streams_);
    const StreamSlot* other = streams_file_.write(sid, cur_pos_, land, p, &planes[b]);
    if (!other) continue;
    const bool east = s.dir == Dir::East;
    const uint32_t meet = east ? std::max(cur_pos_, other->pos) : std::min(cur_pos_, other->pos);
    const uint64_t meet_cycle = east ? land + (meet - cur_pos_) : land + (cur_pos_ - meet);
    fail("stream-collision", stream_name(sb),
         fmt::format("the result landing on {} at position {} on cycle {} meets, at position {} on cycle {}, the value put on the stream at position {} on cycle {} by {}",
                     stream_name(sb), cur_pos_, land, meet, meet_cycle, other->pos, other->land,
                     describe(other->prod.queue, other->prod.instr)));
  }
}

// ---- errors ---------------------------------------------------------------------------------

std::string ChipEngine::describe(uint32_t qid, uint32_t pc) const {
  const EngineQueue& q = queues_[qid];
  return fmt::format("{} queue {} instr {} `{}`", cfg_.slices[q.slice].name, q.queue, pc, format_instr((*q.code)[pc]));
}

void ChipEngine::fail(const std::string& rule, const std::string& stream, const std::string& detail) const {
  const EngineQueue& q = queues_[cur_q_];
  SimError::Where w;
  w.cycle = cur_t_;
  w.chip = chip_;
  w.slice = cfg_.slices[q.slice].name;
  w.queue = q.queue;
  w.instr_index = cur_pc_;
  w.instr_text = format_instr((*q.code)[cur_pc_]);
  w.stream = stream;
  if (const SourceMap* sm = opt_.source_map) {
    if (chip_ < sm->lines.size() && q.qc_index < sm->lines[chip_].size() && cur_pc_ < sm->lines[chip_][q.qc_index].size())
      w.source = fmt::format("{}:{}", sm->file, sm->lines[chip_][q.qc_index][cur_pc_]);
  }
  throw SimError(rule, w, detail);
}

}  // namespace lpu::sim::core
