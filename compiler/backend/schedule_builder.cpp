// ScheduleBuilder: resource ids per slice, issue checks, and the read/write/produce helpers that
// turn the stream rules of docs/architecture.md into reservations.
#include "compiler/backend/schedule_builder.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace lpu::compiler {

namespace {
int count_resources(const ChipConfig& cfg, std::vector<int>* qb, std::vector<int>* sr,
                    std::vector<int>* mb, std::vector<int>* lb) {
  int n = 0;
  for (const SliceSpec& s : cfg.slices) {
    qb->push_back(n);
    n += static_cast<int>(s.queues);
    sr->push_back(s.kind == SliceKind::MEM ? n++ : -1);
    if (s.kind == SliceKind::MXM) {
      mb->push_back(n);
      n += static_cast<int>(cfg.mxm_planes) * 4;
    } else {
      mb->push_back(-1);
    }
    if (s.kind == SliceKind::C2C) {
      lb->push_back(n);
      n += static_cast<int>(cfg.c2c_links) * 2;
    } else {
      lb->push_back(-1);
    }
  }
  return n;
}
}  // namespace

ScheduleBuilder::ScheduleBuilder(const ChipConfig& cfg)
    : cfg_(cfg), slots_(cfg.streams_per_direction, cfg.num_positions()) {
  busy_ = BusyTable(count_resources(cfg, &queue_base_, &sram_id_, &mxm_base_, &link_base_));
}

ScheduleBuilder::Res ScheduleBuilder::class_resource(int slice, const Instr& in, uint64_t occ) const {
  const size_t s = static_cast<size_t>(slice);
  auto need = [&](int id, const char* what) {
    if (id < 0)
      throw std::logic_error(std::string("ScheduleBuilder: ") + what + " on slice " + cfg_.slices[s].name);
    return id;
  };
  switch (sched_info(op_info(in.op).sched).resource) {
    case Resource::Queue: return {-1, 0};
    case Resource::Sram: return {need(sram_id_[s], "SRAM op"), occ};
    case Resource::MxmLw: return {need(mxm_base_[s], "MXM op") + static_cast<int>(in.get(Field::Plane)) * 4 + 0, occ};
    case Resource::MxmIw: return {need(mxm_base_[s], "MXM op") + static_cast<int>(in.get(Field::Plane)) * 4 + 1, occ};
    case Resource::MxmAbc: return {need(mxm_base_[s], "MXM op") + static_cast<int>(in.get(Field::Plane)) * 4 + 2, occ};
    case Resource::MxmAcc: return {need(mxm_base_[s], "MXM op") + static_cast<int>(in.get(Field::Plane)) * 4 + 3, occ};
    case Resource::LinkTx: return {need(link_base_[s], "C2C op") + static_cast<int>(in.get(Field::Link)) * 2, occ};
    case Resource::LinkRx: return {need(link_base_[s], "C2C op") + static_cast<int>(in.get(Field::Link)) * 2 + 1, occ};
  }
  throw std::logic_error("ScheduleBuilder: unknown resource kind");
}

ScheduleBuilder::Cost ScheduleBuilder::cost(int slice, const Instr& in) const {
  const TimingEntry te = instr_timing(cfg_, in);
  const bool queue_res = sched_info(op_info(in.op).sched).resource == Resource::Queue;
  return {queue_res ? std::max<uint64_t>(1, te.occupancy) : 1, class_resource(slice, in, te.occupancy)};
}

bool ScheduleBuilder::can_issue(int slice, int queue, uint64_t t, const Instr& in) const {
  const Cost c = cost(slice, in);
  return queue_free(slice, queue, c, t) && res_free(c, t);
}

void ScheduleBuilder::issue(int slice, int queue, uint64_t t, const Instr& in) {
  const Cost c = cost(slice, in);
  if (!queue_free(slice, queue, c, t) || !res_free(c, t))
    throw std::logic_error("ScheduleBuilder::issue: resource busy on slice " +
                           cfg_.slices[static_cast<size_t>(slice)].name + " at cycle " + std::to_string(t));
  place(slice, queue, t, in, c);
}

void ScheduleBuilder::place(int slice, int queue, uint64_t t, const Instr& in, const Cost& c) {
  busy_.take(queue_base_[static_cast<size_t>(slice)] + queue, t, c.qlen);
  if (c.res.id >= 0) busy_.take(c.res.id, t, c.res.len);
  placed_.push_back({static_cast<uint16_t>(slice), static_cast<uint8_t>(queue), t, in});
}

bool ScheduleBuilder::issue_any(int slice, uint64_t t, const Instr& in) {
  const Cost c = cost(slice, in);
  const int q = first_queue(slice, c, t);
  if (q < 0) return false;
  place(slice, q, t, in, c);
  return true;
}

int ScheduleBuilder::free_queue(int slice, uint64_t t, const Instr& in) const {
  return first_queue(slice, cost(slice, in), t);
}

int ScheduleBuilder::first_queue(int slice, const Cost& c, uint64_t t) const {
  if (!res_free(c, t)) return -1;  // the class resource does not depend on the queue
  const int nq = static_cast<int>(cfg_.slices[static_cast<size_t>(slice)].queues);
  for (int q = 0; q < nq; ++q)
    if (queue_free(slice, q, c, t)) return q;
  return -1;
}

void ScheduleBuilder::rollback(const Txn& x) {
  busy_.rollback(x.busy);
  slots_.rollback(x.slots);
  placed_.resize(x.placed);
}

bool ScheduleBuilder::fetch(const std::vector<uint16_t>& slices, uint32_t addr, uint32_t q, uint64_t T,
                            Dir dir, uint64_t not_before, StreamValue* out) {
  const uint32_t width = static_cast<uint32_t>(slices.size());
  Instr rd = make_instr(Opcode::Read);
  rd.set(Field::Addr, addr);
  const uint64_t lat = instr_timing(cfg_, rd).latency;
  // Every plane must be upstream of q and its read must issue at or after not_before.
  for (uint16_t s : slices) {
    const uint32_t p = pos(s);
    if (dir == Dir::East ? p > q : p < q) return false;
    const uint64_t dist = dir == Dir::East ? q - p : p - q;
    if (T < not_before + lat + dist) return false;
  }
  const uint64_t d = slots_.diagonal(dir, q, T);
  const int base = slots_.find_group(dir, width, d);
  if (base < 0) return false;
  Txn x = begin();
  for (uint32_t b = 0; b < width; ++b) {
    const uint32_t p = pos(slices[b]);
    const uint64_t dist = dir == Dir::East ? q - p : p - q;
    const uint64_t t = T - lat - dist;
    Instr in = rd;
    in.set(Field::Dst, StreamRef{dir, static_cast<uint8_t>(base + static_cast<int>(b))}.encode());
    if (!issue_any(slices[b], t, in)) {
      rollback(x);
      return false;
    }
  }
  slots_.take(dir, static_cast<uint32_t>(base), width, d);
  if (out) *out = StreamValue{dir, static_cast<uint32_t>(base), width, q, T};
  return true;
}

bool ScheduleBuilder::store(const StreamValue& v, const std::vector<uint16_t>& slices, uint32_t addr,
                            uint64_t not_before, uint64_t* landed) {
  if (slices.size() != v.width) throw std::logic_error("ScheduleBuilder::store: width mismatch");
  Instr wr = make_instr(Opcode::Write);
  wr.set(Field::Addr, addr);
  const uint64_t lat = instr_timing(cfg_, wr).latency;
  Txn x = begin();
  uint64_t land = 0;
  for (uint32_t b = 0; b < v.width; ++b) {
    const uint64_t t = v.time_at(pos(slices[b]));
    if (t == UINT64_MAX || t < not_before) {
      rollback(x);
      return false;
    }
    Instr in = wr;
    in.set(Field::SrcA, StreamRef{v.dir, static_cast<uint8_t>(v.base + b)}.encode());
    if (!issue_any(slices[b], t, in)) {
      rollback(x);
      return false;
    }
    land = std::max(land, t + lat);
  }
  if (landed) *landed = land;
  return true;
}

bool ScheduleBuilder::produce(Dir dir, uint32_t width, uint32_t q, uint64_t T, StreamValue* out) {
  const uint64_t d = slots_.diagonal(dir, q, T);
  const int base = slots_.find_group(dir, width, d);
  if (base < 0) return false;
  slots_.take(dir, static_cast<uint32_t>(base), width, d);
  *out = StreamValue{dir, static_cast<uint32_t>(base), width, q, T};
  return true;
}

uint32_t ScheduleBuilder::map_id(const std::vector<uint16_t>& map) {
  if (map.size() != cfg_.vector_bytes()) throw std::logic_error("ScheduleBuilder::map_id: a map has one entry per lane");
  for (size_t i = 0; i < maps_.size(); ++i)
    if (maps_[i] == map) return static_cast<uint32_t>(i);
  maps_.push_back(map);
  return static_cast<uint32_t>(maps_.size() - 1);
}

uint64_t ScheduleBuilder::end_cycle() const {
  uint64_t e = 0;
  for (const Placement& p : placed_)
    if (p.in.op != Opcode::Nop) e = std::max(e, p.t + instr_timing(cfg_, p.in).latency);
  return e;
}

}  // namespace lpu::compiler
