// Collective programs (all-reduce, stage handoff) scheduled with one ScheduleBuilder per chip; see
// collective.h for the algorithms and the tensor names.
#include "compiler/llm/collective.h"

#include <algorithm>
#include <fmt/format.h>
#include <memory>
#include <stdexcept>
#include <vector>

#include "compiler/backend/kernel_common.h"
#include "compiler/backend/queue_emitter.h"
#include "compiler/backend/schedule_builder.h"
#include "compiler/passes/sram_alloc.h"
#include "compiler/passes/tiling.h"

namespace lpu::llm {

using compiler::PlacedTensor;
using compiler::ScheduleBuilder;
using compiler::StreamValue;
using compiler::kMaxSearch;
using compiler::opposite;
using compiler::pos_gap;

namespace {


struct Chip {
  explicit Chip(const ChipConfig& cfg) : b(cfg), alloc(cfg) {}
  ScheduleBuilder b;
  compiler::SramAllocator alloc;
};

// Scheduling state of a multi-chip collective.
struct Ctx {
  Ctx(const ChipConfig& c, int n) : cfg(c) {
    for (int i = 0; i < n; ++i) chips.push_back(std::make_unique<Chip>(c));
    const auto c2cs = c.slices_of(SliceKind::C2C);
    const auto vxms = c.slices_of(SliceKind::VXM);
    if (c2cs.empty() || vxms.empty())
      throw InputError(fmt::format("chip config '{}': collectives need a C2C and a VXM slice in the floorplan", c.name));
    c2c = c2cs.front();
    vxm = vxms.front();
    c2c_pos = c.slices[static_cast<size_t>(c2c)].position;
    vxm_pos = c.slices[static_cast<size_t>(vxm)].position;
    send_lat = instr_timing(c, make_instr(Opcode::Send)).latency;
    recv_lat = instr_timing(c, make_instr(Opcode::Recv)).latency;
    read_lat = instr_timing(c, make_instr(Opcode::Read)).latency;
    Instr add = make_instr(Opcode::Add, DType::F16);
    add_lat = instr_timing(c, add).latency;
    tx_next.assign(static_cast<size_t>(n), std::vector<uint64_t>(c.c2c_links, 0));
    rx_next = tx_next;
  }
  const ChipConfig& cfg;
  std::vector<std::unique_ptr<Chip>> chips;
  int c2c = -1, vxm = -1;
  uint32_t c2c_pos = 0, vxm_pos = 0;
  uint64_t send_lat = 0, recv_lat = 0, read_lat = 0, add_lat = 0;
  std::vector<std::vector<uint64_t>> tx_next, rx_next;  // per chip, per link: search starts here
  uint64_t vectors_sent = 0;
  std::vector<LinkDesc> links;
};


PlacedTensor place(Ctx& x, int chip, const std::string& name, int64_t rows, int64_t hidden) {
  compiler::TilingOptions to;
  to.port_split_min_rows = 0;  // row blocks only where one slice is too small
  return compiler::place_tensor(x.chips[static_cast<size_t>(chip)]->alloc, name, DType::F16, {rows, hidden}, to,
                                nullptr);
}

// A vector of a placed tensor: row r, chunk ch.
struct Vec {
  PlacedTensor* t = nullptr;
  int64_t r = 0;
  uint32_t ch = 0;
  uint16_t slice(size_t plane) const { return t->part_of_row(r).slices[plane]; }
  uint32_t addr() const { return t->addr_of(r, ch); }
  uint64_t& ready() const { return t->ready_of(r, ch); }
};

// Sends byte plane `plane` of vector s (on chip a) over link la (cabled to chip b's lb) and writes
// it into vector d on chip b as it passes d's slice.
void transfer(Ctx& x, int a, const Vec& s, int b, const Vec& d, int plane, uint32_t la, uint32_t lb) {
  ScheduleBuilder& A = x.chips[static_cast<size_t>(a)]->b;
  ScheduleBuilder& B = x.chips[static_cast<size_t>(b)]->b;
  const uint16_t sslice = s.slice(static_cast<size_t>(plane));
  const uint32_t saddr = s.addr();
  const uint64_t ready = s.ready();
  Instr snd = make_instr(Opcode::Send);
  snd.set(Field::Link, la);
  uint64_t t = std::max(ready + x.read_lat + pos_gap(x.c2c_pos, A.pos(sslice)), x.tx_next[static_cast<size_t>(a)][la]);
  for (uint64_t n = 0;; ++t, ++n) {
    if (n > kMaxSearch) throw std::logic_error("collective: no cycle found for a send within the search bound");
    auto txn = A.begin();
    StreamValue sv;
    if (!A.fetch({sslice}, saddr, x.c2c_pos, t, Dir::East, ready, &sv)) {
      A.rollback(txn);
      continue;
    }
    Instr in = snd;
    in.set(Field::SrcA, sv.ref().encode());
    const int q = A.free_queue(x.c2c, t, in);
    if (q < 0) {
      A.rollback(txn);
      continue;
    }
    A.issue(x.c2c, q, t, in);
    break;
  }
  s.t->last_read = std::max(s.t->last_read, t);
  x.tx_next[static_cast<size_t>(a)][la] = t + 1;
  const uint16_t dslice = d.slice(static_cast<size_t>(plane));
  const uint32_t daddr = d.addr();
  Instr rcv = make_instr(Opcode::Recv);
  rcv.set(Field::Link, lb);
  // Recvs of one link are placed in send order at increasing cycles: the FIFO pops the right vector.
  uint64_t u = std::max(t + x.send_lat, x.rx_next[static_cast<size_t>(b)][lb]);
  uint64_t landed = 0;
  for (uint64_t n = 0;; ++u, ++n) {
    if (n > kMaxSearch) throw std::logic_error("collective: no cycle found for a recv within the search bound");
    auto txn = B.begin();
    StreamValue dv;
    if (!B.produce(Dir::West, 1, x.c2c_pos, u + x.recv_lat, &dv)) continue;
    Instr in = rcv;
    in.set(Field::Dst, dv.ref().encode());
    const int q = B.free_queue(x.c2c, u, in);
    if (q < 0) {
      B.rollback(txn);
      continue;
    }
    B.issue(x.c2c, q, u, in);
    if (!B.store(dv, {dslice}, daddr, d.t->write_not_before, &landed)) {
      B.rollback(txn);
      continue;
    }
    break;
  }
  x.rx_next[static_cast<size_t>(b)][lb] = u + 1;
  d.ready() = std::max(d.ready(), landed);
  ++x.vectors_sent;
}

// Both planes of vector s (chip a) to d (chip b) over the least busy of `cable` (pairs of
// (link on a, link on b)).
void transfer_vector(Ctx& x, int a, const Vec& s, int b, const Vec& d,
                     const std::vector<std::pair<uint32_t, uint32_t>>& cable) {
  for (int plane = 0; plane < 2; ++plane) {
    size_t best = 0;
    for (size_t j = 1; j < cable.size(); ++j)
      if (x.tx_next[static_cast<size_t>(a)][cable[j].first] < x.tx_next[static_cast<size_t>(a)][cable[best].first])
        best = j;
    transfer(x, a, s, b, d, plane, cable[best].first, cable[best].second);
  }
}

// Owner o: out = terms[0] + terms[1] + ... in f16 (one add.f16 per extra term, chained on the VXM:
// the running sum is read by the next add on the cycle it lands).
void reduce_vector(Ctx& x, int o, const std::vector<Vec>& terms, const Vec& out) {
  ScheduleBuilder& B = x.chips[static_cast<size_t>(o)]->b;
  auto dir_to_vxm = [&](const Vec& v) { return B.pos(v.slice(0)) < x.vxm_pos ? Dir::East : Dir::West; };
  const auto& oslices = out.t->part_of_row(out.r).slices;
  const Dir odir = B.pos(oslices[0]) > x.vxm_pos ? Dir::East : Dir::West;
  uint64_t T0 = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    uint64_t far = 0;
    for (uint16_t sl : terms[i].t->part_of_row(terms[i].r).slices) far = std::max(far, pos_gap(B.pos(sl), x.vxm_pos));
    const uint64_t lb = terms[i].ready() + x.read_lat + far;
    const uint64_t off = i == 0 ? 0 : (i - 1) * x.add_lat;
    T0 = std::max(T0, lb > off ? lb - off : 0);
  }
  auto fetch = [&](const Vec& v, uint64_t T, StreamValue* sv) {
    return B.fetch(v.t->part_of_row(v.r).slices, v.addr(), x.vxm_pos, T, dir_to_vxm(v), v.ready(), sv);
  };
  uint64_t landed = 0;
  for (uint64_t n = 0;; ++T0, ++n) {
    if (n > kMaxSearch) throw std::logic_error("collective: no cycle found for a reduction within the search bound");
    auto txn = B.begin();
    StreamValue acc;
    bool ok = fetch(terms[0], T0, &acc);
    for (size_t i = 1; ok && i < terms.size(); ++i) {
      const uint64_t Ti = T0 + (i - 1) * x.add_lat;
      StreamValue bv;
      ok = fetch(terms[i], Ti, &bv);
      if (!ok) break;
      const bool last = i + 1 == terms.size();
      StreamValue res;
      const Dir other = opposite(odir);
      ok = B.produce(last ? odir : other, 2, x.vxm_pos, Ti + x.add_lat, &res) ||
           (!last && B.produce(odir, 2, x.vxm_pos, Ti + x.add_lat, &res));
      if (!ok) break;
      Instr in = make_instr(Opcode::Add, DType::F16);
      in.set(Field::SrcA, acc.ref().encode());
      in.set(Field::SrcB, bv.ref().encode());
      in.set(Field::Dst, res.ref().encode());
      const int q = B.free_queue(x.vxm, Ti, in);
      ok = q >= 0;
      if (ok) B.issue(x.vxm, q, Ti, in);
      acc = res;
    }
    if (ok) ok = B.store(acc, oslices, out.addr(), out.t->write_not_before, &landed);
    if (ok) break;
    B.rollback(txn);
  }
  out.ready() = landed;
}

CollectiveProgram finish(Ctx& x, std::vector<std::vector<TensorDesc>> descs) {
  CollectiveProgram cp;
  Program& p = cp.program;
  p.config_name = x.cfg.name;
  p.num_chips = static_cast<uint32_t>(x.chips.size());
  uint64_t end = 0;
  bool any = false;
  for (auto& c : x.chips) {
    end = std::max(end, c->b.end_cycle());
    any = any || !c->b.placements().empty();
  }
  for (auto& c : x.chips) p.chips.push_back(compiler::emit_queues(c->b.take_placements(), compiler::EmitOptions{}));
  for (size_t c = 0; c < descs.size(); ++c)
    for (TensorDesc& d : descs[c]) {
      d.chip = static_cast<uint32_t>(c);
      p.tensors.push_back(std::move(d));
    }
  p.links = x.links;
  p.predicted_cycles = any ? end + x.cfg.stagger_tail() : 0;
  cp.predicted_cycles = p.predicted_cycles;
  if (any)
    for (auto& c : x.chips) cp.predicted_streams.push_back(c->b.slots().envelope(p.predicted_cycles));
  cp.c2c_vectors = x.vectors_sent;
  return cp;
}

void check_shape(int64_t rows, int64_t hidden, const char* what) {
  if (rows < 1 || hidden < 1)
    throw InputError(fmt::format("{}: rows and hidden must be >= 1 (got rows {}, hidden {})", what, rows, hidden));
}

}  // namespace

LinkPlan link_plan(const ChipConfig& cfg, int64_t tp) {
  LinkPlan lp;
  lp.tp = tp;
  if (tp < 1) throw InputError(fmt::format("tensor-parallel size {} must be >= 1", tp));
  const int64_t node = std::max<int64_t>(1, cfg.chips_per_node);
  if (tp > node) {
    const int64_t rack = static_cast<int64_t>(cfg.nodes_per_rack) * node;
    if (tp % node != 0 || tp > rack)
      throw InputError(fmt::format("tensor-parallel size {} must be <= the node size or a multiple of it within one "
                                   "rack (topology.chips_per_node = {}, nodes_per_rack = {} in chip config '{}': "
                                   "allowed {}, {}, ..., {})",
                                   tp, cfg.chips_per_node, cfg.nodes_per_rack, cfg.name, node, 2 * node, rack));
  }
  lp.local = std::min(tp, node);
  lp.nodes = tp / lp.local;
  const int64_t cables = (lp.local - 1) + (lp.nodes - 1);  // peers in the node + counterparts in other nodes
  if (static_cast<int64_t>(cfg.c2c_links) < cables + 2)   // + one link in + one link out
    throw InputError(fmt::format("tensor-parallel size {} ({} node(s) of {}) needs >= {} C2C links per chip "
                                 "(c2c.links = {} in '{}')",
                                 tp, lp.nodes, lp.local, cables + 2, cfg.c2c_links, cfg.name));
  const uint32_t per = cables == 0 ? 0 : (cfg.c2c_links - 2) / static_cast<uint32_t>(cables);
  lp.per_peer = lp.local > 1 ? per : 0;
  lp.per_remote = lp.nodes > 1 ? per : 0;
  lp.handoff = (cfg.c2c_links - per * static_cast<uint32_t>(cables)) / 2;
  return lp;
}

bool link_plan_ok(const ChipConfig& cfg, int64_t tp) {
  try {
    link_plan(cfg, tp);
    return true;
  } catch (const InputError&) {
    return false;
  }
}

CollectiveProgram compile_allreduce(int64_t rows, int64_t hidden, int64_t tp, const ChipConfig& cfg) {
  check_shape(rows, hidden, "all-reduce");
  const LinkPlan lp = link_plan(cfg, tp);
  if (tp == 1) return CollectiveProgram{};
  const int n = static_cast<int>(tp), L = static_cast<int>(lp.local), G = static_cast<int>(lp.nodes);
  Ctx x(cfg, n);
  using Cable = std::vector<std::pair<uint32_t, uint32_t>>;
  std::vector<std::vector<Cable>> cable(static_cast<size_t>(n), std::vector<Cable>(static_cast<size_t>(n)));
  auto connect = [&](int a, uint32_t la0, int b, uint32_t lb0, uint32_t count) {
    for (uint32_t j = 0; j < count; ++j) {
      const uint32_t la = la0 + j, lb = lb0 + j;
      x.links.push_back(LinkDesc{static_cast<uint32_t>(a), la, static_cast<uint32_t>(b), lb});
      cable[static_cast<size_t>(a)][static_cast<size_t>(b)].push_back({la, lb});
      cable[static_cast<size_t>(b)][static_cast<size_t>(a)].push_back({lb, la});
    }
  };
  // Index of `other` among 0..count-1 without `self` (the k-th peer / remote node of a chip).
  auto skip_self = [](int self, int other) { return static_cast<uint32_t>(other < self ? other : other - 1); };
  const uint32_t remote0 = lp.per_peer * static_cast<uint32_t>(L - 1);  // first link to another node
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b < n; ++b) {
      const int ja = a / L, ka = a % L, jb = b / L, kb = b % L;
      if (ja == jb)
        connect(a, skip_self(ka, kb) * lp.per_peer, b, skip_self(kb, ka) * lp.per_peer, lp.per_peer);
      else if (ka == kb)
        connect(a, remote0 + skip_self(ja, jb) * lp.per_remote, b, remote0 + skip_self(jb, ja) * lp.per_remote,
                lp.per_remote);
    }
  std::vector<PlacedTensor> partial, sum;
  for (int c = 0; c < n; ++c) partial.push_back(place(x, c, fmt::format("partial_c{}", c), rows, hidden));
  for (int c = 0; c < n; ++c) sum.push_back(place(x, c, fmt::format("sum_c{}", c), rows, hidden));
  const uint32_t vpr = partial[0].vpr;
  const int64_t vectors = rows * vpr;
  // Inboxes hold only the owner's vectors, packed: vector v of its owner is row v / L.
  const int64_t owned = (vectors + L - 1) / L;
  auto packed = [&](const std::string& name, int count) {
    std::vector<std::vector<PlacedTensor>> t(static_cast<size_t>(n));
    for (int c = 0; c < n; ++c)
      for (int k = 0; k < count; ++k)
        t[static_cast<size_t>(c)].push_back(
            place(x, c, fmt::format("{}_{}", name, k), owned, static_cast<int64_t>(cfg.vector_bytes())));
    return t;
  };
  auto inbox = packed("inbox", L - 1);                   // inbox[o][k]: from the k-th other chip of o's node
  auto remote = packed("remote", G - 1);                 // remote[o][k]: node sum of the k-th other node
  auto node_sum = packed("node_sum", G > 1 ? 1 : 0);     // node_sum[o][0]: o's node's sum of its vectors
  auto vec = [&](std::vector<PlacedTensor>& t, int c, int64_t v) {
    return Vec{&t[static_cast<size_t>(c)], v / vpr, static_cast<uint32_t>(v % vpr)};
  };
  auto slot = [&](std::vector<std::vector<PlacedTensor>>& t, int c, uint32_t k, int64_t v) {
    return Vec{&t[static_cast<size_t>(c)][k], v / L, 0};
  };
  auto owner = [&](int node, int64_t v) { return node * L + static_cast<int>(v % L); };
  // (1) Reduce-scatter inside each node: every non-owner sends its partial of v to v's owner.
  for (int j = 0; j < G; ++j)
    for (int64_t v = 0; v < vectors; ++v) {
      const int o = owner(j, v);
      for (int c = j * L; c < (j + 1) * L; ++c)
        if (c != o)
          transfer_vector(x, c, vec(partial, c, v), o, slot(inbox, o, skip_self(o % L, c % L), v),
                          cable[static_cast<size_t>(c)][static_cast<size_t>(o)]);
    }
  // Owner's node sum (the full sum when the group is one node): own partial first, then chip order.
  for (int j = 0; j < G; ++j)
    for (int64_t v = 0; v < vectors; ++v) {
      const int o = owner(j, v);
      std::vector<Vec> terms{vec(partial, o, v)};
      for (int c = j * L; c < (j + 1) * L; ++c)
        if (c != o) terms.push_back(slot(inbox, o, skip_self(o % L, c % L), v));
      reduce_vector(x, o, terms, G > 1 ? slot(node_sum, o, 0, v) : vec(sum, o, v));
    }
  if (G > 1) {
    // (2) Owners exchange node sums with their counterparts in the other nodes, then each adds the
    // G node sums in node order (identical terms and order on every node: identical bits).
    for (int64_t v = 0; v < vectors; ++v)
      for (int j = 0; j < G; ++j)
        for (int i = 0; i < G; ++i)
          if (i != j) {
            const int from = owner(j, v), to = owner(i, v);
            transfer_vector(x, from, slot(node_sum, from, 0, v), to, slot(remote, to, skip_self(i, j), v),
                            cable[static_cast<size_t>(from)][static_cast<size_t>(to)]);
          }
    for (int i = 0; i < G; ++i)
      for (int64_t v = 0; v < vectors; ++v) {
        const int o = owner(i, v);
        std::vector<Vec> terms;
        for (int j = 0; j < G; ++j)
          terms.push_back(j == i ? slot(node_sum, o, 0, v) : slot(remote, o, skip_self(i, j), v));
        reduce_vector(x, o, terms, vec(sum, o, v));
      }
  }
  // (3) All-gather inside each node: the owner sends the sum to every other chip of its node.
  for (int j = 0; j < G; ++j)
    for (int64_t v = 0; v < vectors; ++v) {
      const int o = owner(j, v);
      for (int c = j * L; c < (j + 1) * L; ++c)
        if (c != o)
          transfer_vector(x, o, vec(sum, o, v), c, vec(sum, c, v), cable[static_cast<size_t>(o)][static_cast<size_t>(c)]);
    }
  std::vector<std::vector<TensorDesc>> descs(static_cast<size_t>(n));
  for (int c = 0; c < n; ++c) {
    for (TensorDesc& d : compiler::tensor_descs(partial[static_cast<size_t>(c)], TensorRole::Input))
      descs[static_cast<size_t>(c)].push_back(std::move(d));
    for (TensorDesc& d : compiler::tensor_descs(sum[static_cast<size_t>(c)], TensorRole::Output))
      descs[static_cast<size_t>(c)].push_back(std::move(d));
  }
  return finish(x, std::move(descs));
}

CollectiveProgram compile_handoff(int64_t rows, int64_t hidden, int64_t tp, const ChipConfig& cfg) {
  check_shape(rows, hidden, "handoff");
  const LinkPlan lp = link_plan(cfg, tp);
  Ctx x(cfg, 2);
  std::vector<std::pair<uint32_t, uint32_t>> cable;
  // The links the all-reduce leaves free: the last `handoff` go out to the next stage, the
  // `handoff` before them come in from the previous stage.
  const uint32_t out0 = cfg.c2c_links - lp.handoff, in0 = cfg.c2c_links - 2 * lp.handoff;
  for (uint32_t j = 0; j < lp.handoff; ++j) {
    x.links.push_back(LinkDesc{0, out0 + j, 1, in0 + j});
    cable.push_back({out0 + j, in0 + j});
  }
  PlacedTensor src = place(x, 0, "x", rows, hidden);
  PlacedTensor dst = place(x, 1, "y", rows, hidden);
  for (int64_t r = 0; r < rows; ++r)
    for (uint32_t ch = 0; ch < src.vpr; ++ch) transfer_vector(x, 0, Vec{&src, r, ch}, 1, Vec{&dst, r, ch}, cable);
  std::vector<std::vector<TensorDesc>> descs(2);
  descs[0] = compiler::tensor_descs(src, TensorRole::Input);
  descs[1] = compiler::tensor_descs(dst, TensorRole::Output);
  return finish(x, std::move(descs));
}

}  // namespace lpu::llm
