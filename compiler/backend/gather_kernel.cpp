// GatherScheduler: vector-by-vector placement of a row gather (see gather_kernel.h).
#include "compiler/backend/gather_kernel.h"

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>

#include "compiler/backend/kernel_common.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

namespace {


}  // namespace

GatherScheduler::GatherScheduler(ScheduleBuilder& b) : b_(b) {
  for (int i : b.cfg().slices_of(SliceKind::VXM)) {
    vxm_slice_ = i;
    vxm_pos_ = b.pos(i);
    break;
  }
}

bool GatherScheduler::relay(StreamValue* v, DType dt, Dir out, uint64_t t) {
  Instr mv = make_instr(Opcode::Mov, dt);
  StreamValue o;
  if (!b_.produce(out, static_cast<uint32_t>(dtype_bytes(dt)), vxm_pos_, t + instr_timing(b_.cfg(), mv).latency, &o))
    return false;
  mv.set(Field::SrcA, v->ref().encode());
  mv.set(Field::Dst, o.ref().encode());
  if (!b_.issue_any(vxm_slice_, t, mv)) return false;
  *v = o;
  return true;
}

MatmulStats GatherScheduler::schedule(const GatherSpec& spec) {
  const ChipConfig& cfg = b_.cfg();
  PlacedTensor& S = *spec.src;
  PlacedTensor& D = *spec.dst;
  const int64_t taps = spec.taps;
  const bool rowcopy = spec.dst_rows != nullptr;
  const int64_t entries = rowcopy ? static_cast<int64_t>(spec.dst_rows->size()) : D.rows;
  if (taps < 1 || !spec.map || static_cast<int64_t>(spec.map->size()) != entries * taps || S.dtype != D.dtype ||
      D.vpr != static_cast<uint32_t>(taps) * S.vpr || (taps == 1 && D.inner != S.inner) || (rowcopy && taps != 1))
    throw std::logic_error(fmt::format("gather {}: [{}, {}] -> [{}, {}] with {} taps does not fit", spec.name, S.rows,
                                       S.inner, D.rows, D.inner, taps));
  // Visit order of the entries: as given, or (row copy) round-robin over the source's parts.
  std::vector<int64_t> order;
  if (rowcopy) {
    std::vector<std::vector<int64_t>> by_part(S.parts.size());
    for (int64_t i = 0; i < entries; ++i) {
      const int64_t sr = (*spec.map)[static_cast<size_t>(i)], dr = (*spec.dst_rows)[static_cast<size_t>(i)];
      if (sr < 0 || sr >= S.rows || dr < 0 || dr >= D.rows)
        throw std::logic_error(fmt::format("gather {}: row copy {} -> {} out of range", spec.name, sr, dr));
      by_part[static_cast<size_t>(sr / S.part_rows)].push_back(i);
    }
    for (size_t k = 0; order.size() < static_cast<size_t>(entries); ++k)
      for (const auto& bp : by_part)
        if (k < bp.size()) order.push_back(bp[k]);
  }
  Instr rd = make_instr(Opcode::Read);
  const uint64_t lat_read = instr_timing(cfg, rd).latency;
  MatmulStats st;
  uint64_t order_floor = 0;  // earliest read issue of the previous vector: reads stay roughly in order
  for (int64_t e = 0; e < entries; ++e) {
    const int64_t mi = rowcopy ? order[static_cast<size_t>(e)] : e;  // entry (map index / taps)
    const int64_t r = rowcopy ? (*spec.dst_rows)[static_cast<size_t>(mi)] : e;  // dst row
    const auto& ds = D.part_of_row(r).slices;
    uint32_t dmin = UINT32_MAX, dmax = 0;
    for (uint16_t s : ds) dmin = std::min(dmin, b_.pos(s)), dmax = std::max(dmax, b_.pos(s));
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t sr = (*spec.map)[static_cast<size_t>(mi * taps + t)];
      if (sr >= S.rows || (sr < 0 && !spec.zero))
        throw std::logic_error(fmt::format("gather {}: map row {} out of range", spec.name, sr));
      for (uint32_t c = 0; c < S.vpr; ++c) {
        const PlacedTensor& T = sr < 0 ? *spec.zero : S;
        const int64_t tr = sr < 0 ? 0 : sr;
        const uint32_t tc = sr < 0 ? 0 : c;
        const auto& ts = T.part_of_row(tr).slices;
        const uint32_t saddr = T.addr_of(tr, tc);
        const uint64_t ready = T.ready[static_cast<size_t>(tr * T.vpr + tc)];
        const uint32_t daddr = D.addr_of(r, static_cast<uint32_t>(t) * S.vpr + c);
        uint32_t smin = UINT32_MAX, smax = 0;
        for (uint16_t s : ts) smin = std::min(smin, b_.pos(s)), smax = std::max(smax, b_.pos(s));
        // Route: straight east/west when every destination plane is downstream of every source
        // plane, else through the VXM (sources and destinations each lie on one side of it).
        const bool east = dmin >= smax, west = !east && dmax <= smin;
        const bool direct = east || west;
        const uint32_t q = east ? smax : west ? smin : vxm_pos_;
        const Dir din = direct ? (east ? Dir::East : Dir::West) : (smax < vxm_pos_ ? Dir::East : Dir::West);
        const Dir dout = direct ? din : (dmin > vxm_pos_ ? Dir::East : Dir::West);
        if (!direct && vxm_slice_ < 0)
          throw InputError(fmt::format("{}: chip '{}' has no VXM slice to route a gather", spec.name, cfg.name));
        uint64_t far = 0;
        for (uint16_t s : ts) far = std::max(far, pos_gap(b_.pos(s), q));
        uint64_t Tq = std::max(ready, order_floor) + lat_read + far;  // arrival at q
        uint64_t landed = 0;
        bool used_vxm = false;
        for (uint64_t n = 0;; ++Tq, ++n) {
          if (n > kMaxSearch)
            throw std::logic_error("gather scheduler: no cycle found for " + spec.name + " within the search bound");
          auto x = b_.begin();
          StreamValue v;
          bool ok = b_.fetch(ts, saddr, q, Tq, din, ready, &v);
          if (ok && !direct) ok = relay(&v, S.dtype, dout, Tq);
          if (ok) ok = b_.store(v, ds, daddr, D.write_not_before_row(r), &landed);
          if (ok) {
            used_vxm = !direct;
            break;
          }
          b_.rollback(x);
        }
        const uint64_t first_read = Tq - lat_read - far;
        order_floor = std::max(order_floor, first_read);
        if (sr >= 0) S.last_read = std::max(S.last_read, Tq);
        st.first_issue = std::min(st.first_issue, first_read);
        st.reads += ts.size();
        st.writes += ds.size();
        st.vxm += used_vxm ? 1 : 0;
        st.last_end = std::max(st.last_end, landed);
        D.ready_of(r, static_cast<uint32_t>(t) * S.vpr + c) = landed;
      }
    }
  }
  return st;
}

MatmulStats GatherScheduler::lookup(const LookupSpec& spec) {
  const ChipConfig& cfg = b_.cfg();
  PlacedTensor& I = *spec.idx;
  const PlacedTensor& W = *spec.table;
  PlacedTensor& D = *spec.dst;
  if (I.dtype != DType::I16 || I.vpr != 1 || W.parts.size() != 1 || D.dtype != W.dtype || D.vpr != W.vpr ||
      D.inner != W.inner || spec.idx_row0 < 0 || spec.idx_row0 + D.rows > I.rows)
    throw std::logic_error(fmt::format("lookup {}: idx [{}, {}] {}, table [{}, {}] in {} parts -> [{}, {}] does not fit",
                                       spec.name, I.rows, I.inner, dtype_name(I.dtype), W.rows, W.inner,
                                       W.parts.size(), D.rows, D.inner));
  Instr rd = make_instr(Opcode::Read);
  const uint64_t lat_read = instr_timing(cfg, rd).latency;
  Instr ga = make_instr(Opcode::Gather);
  const uint64_t lat_gather = instr_timing(cfg, ga).latency;
  const TensorPart& wp = W.parts[0];
  MatmulStats st;
  uint64_t order_floor = 0;
  for (int64_t r = 0; r < D.rows; ++r) {
    const int64_t ir = spec.idx_row0 + r;
    const auto& is = I.part_of_row(ir).slices;
    const uint32_t iaddr = I.addr_of(ir, 0);
    const uint64_t ready = I.ready[static_cast<size_t>(ir)];
    uint32_t imin = UINT32_MAX, imax = 0;
    for (uint16_t s : is) imin = std::min(imin, b_.pos(s)), imax = std::max(imax, b_.pos(s));
    const auto& ds = D.part_of_row(r).slices;
    // Index route: one read of the index vector per dst vector, passing every table plane's slice
    // (all on one side of the VXM): straight when the index planes lie on one side of all of
    // them, else through the VXM and back out toward them.
    uint32_t gmin = UINT32_MAX, gmax = 0;
    for (uint16_t s : wp.slices) gmin = std::min(gmin, b_.pos(s)), gmax = std::max(gmax, b_.pos(s));
    const bool east = imax <= gmin, west = !east && imin >= gmax, direct = east || west;
    if (!direct && vxm_slice_ < 0)
      throw InputError(fmt::format("{}: chip '{}' has no VXM slice to route a lookup", spec.name, cfg.name));
    const uint32_t q = direct ? (east ? gmin : gmax) : vxm_pos_;
    const Dir din = direct ? (east ? Dir::East : Dir::West) : (imax < vxm_pos_ ? Dir::East : Dir::West);
    const Dir dmid = gmin > vxm_pos_ ? Dir::East : Dir::West;
    uint64_t far = 0;
    for (uint16_t s : is) far = std::max(far, pos_gap(b_.pos(s), q));
    for (uint32_t c = 0; c < W.vpr; ++c) {
      uint64_t Tq = std::max(ready, order_floor) + lat_read + far;  // index arrival at q
      uint64_t landed = 0;
      for (uint64_t n = 0;; ++Tq, ++n) {
        if (n > kMaxSearch)
          throw std::logic_error("lookup scheduler: no cycle found for " + spec.name + " within the search bound");
        auto x = b_.begin();
        StreamValue v;
        bool ok = b_.fetch(is, iaddr, q, Tq, din, ready, &v);
        if (ok && !direct) ok = relay(&v, DType::I16, dmid, Tq);
        // Per byte plane: the gather as the index passes its slice, its byte row straight to the
        // dst plane's slice.
        landed = 0;
        for (size_t pl = 0; ok && pl < wp.slices.size(); ++pl) {
          const uint32_t g = b_.pos(wp.slices[pl]), dp = b_.pos(ds[pl]);
          const uint64_t Tg = v.time_at(g);
          StreamValue res;
          ok = Tg != UINT64_MAX && b_.produce(dp >= g ? Dir::East : Dir::West, 1, g, Tg + lat_gather, &res);
          if (ok) {
            Instr in = ga;
            in.set(Field::SrcA, v.ref().encode());
            in.set(Field::Addr, wp.addr + c);
            in.set(Field::Dst, res.ref().encode());
            ok = b_.issue_any(wp.slices[pl], Tg, in);
          }
          uint64_t l = 0;
          if (ok) ok = b_.store(res, {ds[pl]}, D.addr_of(r, c), D.write_not_before_row(r), &l);
          landed = std::max(landed, l);
        }
        if (ok) break;
        b_.rollback(x);
      }
      const uint64_t first_read = Tq - lat_read - far;
      order_floor = std::max(order_floor, first_read);
      I.last_read = std::max(I.last_read, Tq);
      st.first_issue = std::min(st.first_issue, first_read);
      st.reads += is.size() + wp.slices.size();  // the index planes and the gathers' SRAM reads
      st.writes += ds.size();
      st.vxm += direct ? 0 : 1;
      st.last_end = std::max(st.last_end, landed);
      D.ready_of(r, c) = landed;
    }
  }
  return st;
}

MatmulStats GatherScheduler::combine(const CombineSpec& spec) {
  const ChipConfig& cfg = b_.cfg();
  PlacedTensor& D = *spec.dst;
  bool fits = spec.parts.size() >= 2 && (D.dtype == DType::F16 || D.dtype == DType::F32);
  for (const PlacedTensor* P : spec.parts)
    fits = fits && P->dtype == D.dtype && P->rows == D.rows && P->inner == D.inner && P->vpr == D.vpr;
  if (!fits)
    throw std::logic_error(fmt::format("combine {}: {} parts into [{}, {}] {} do not fit", spec.name,
                                       spec.parts.size(), D.rows, D.inner, dtype_name(D.dtype)));
  if (vxm_slice_ < 0)
    throw InputError(fmt::format("{}: chip '{}' has no VXM slice to combine a split lookup", spec.name, cfg.name));
  const DType it = D.dtype == DType::F16 ? DType::I16 : DType::I32;  // bit-preserving integer add
  const uint32_t width = static_cast<uint32_t>(dtype_bytes(it));
  Instr add = make_instr(Opcode::Add, it);
  const uint64_t lat_add = instr_timing(cfg, add).latency;
  const uint64_t lat_read = instr_timing(cfg, make_instr(Opcode::Read)).latency;
  const size_t n = spec.parts.size();
  MatmulStats st;
  uint64_t order_floor = 0;
  for (int64_t r = 0; r < D.rows; ++r) {
    const auto& ds = D.part_of_row(r).slices;
    uint32_t dmin = UINT32_MAX;
    for (uint16_t s : ds) dmin = std::min(dmin, b_.pos(s));
    const Dir dout = dmin > vxm_pos_ ? Dir::East : Dir::West;  // every plane on one side (SramAllocator)
    for (uint32_t c = 0; c < D.vpr; ++c) {
      // Part k (k >= 1) reaches the VXM when the running sum it is added to is there: cycle
      // T + (k - 1) * lat_add; parts 0 and 1 both on T.
      std::vector<const std::vector<uint16_t>*> ps(n);
      std::vector<uint32_t> pa(n);
      std::vector<uint64_t> pr(n), off(n);
      std::vector<Dir> pdir(n);
      uint64_t T = order_floor;
      for (size_t k = 0; k < n; ++k) {
        const PlacedTensor& P = *spec.parts[k];
        ps[k] = &P.part_of_row(r).slices;
        pa[k] = P.addr_of(r, c);
        pr[k] = P.ready[static_cast<size_t>(r * P.vpr + c)];
        off[k] = k == 0 ? 0 : (k - 1) * lat_add;
        uint64_t far = 0;
        uint32_t pmax = 0;
        for (uint16_t s : *ps[k]) far = std::max(far, pos_gap(b_.pos(s), vxm_pos_)), pmax = std::max(pmax, b_.pos(s));
        pdir[k] = pmax < vxm_pos_ ? Dir::East : Dir::West;
        const uint64_t arrive = pr[k] + lat_read + far;
        T = std::max(T, arrive > off[k] ? arrive - off[k] : 0);
      }
      uint64_t landed = 0;
      for (uint64_t tries = 0;; ++T, ++tries) {
        if (tries > kMaxSearch)
          throw std::logic_error("combine scheduler: no cycle found for " + spec.name + " within the search bound");
        auto x = b_.begin();
        StreamValue sum;
        bool ok = b_.fetch(*ps[0], pa[0], vxm_pos_, T, pdir[0], pr[0], &sum);
        for (size_t k = 1; ok && k < n; ++k) {
          const uint64_t Tk = T + off[k];
          StreamValue v, out;
          ok = b_.fetch(*ps[k], pa[k], vxm_pos_, Tk, pdir[k], pr[k], &v) &&
               b_.produce(dout, width, vxm_pos_, Tk + lat_add, &out);
          if (ok) {
            Instr in = add;
            in.set(Field::SrcA, sum.ref().encode());
            in.set(Field::SrcB, v.ref().encode());
            in.set(Field::Dst, out.ref().encode());
            ok = b_.issue_any(vxm_slice_, Tk, in);
            sum = out;
          }
        }
        if (ok) ok = b_.store(sum, ds, D.addr_of(r, c), D.write_not_before_row(r), &landed);
        if (ok) break;
        b_.rollback(x);
      }
      for (size_t k = 0; k < n; ++k) {
        const uint64_t Tk = T + off[k];
        uint64_t far = 0;
        for (uint16_t s : *ps[k]) far = std::max(far, pos_gap(b_.pos(s), vxm_pos_));
        const uint64_t first_read = Tk - lat_read - far;
        if (k == 0) order_floor = std::max(order_floor, first_read);
        spec.parts[k]->last_read = std::max(spec.parts[k]->last_read, Tk);
        st.first_issue = std::min(st.first_issue, first_read);
        st.reads += ps[k]->size();
      }
      st.writes += ds.size();
      st.vxm += n - 1;
      st.last_end = std::max(st.last_end, landed);
      D.ready_of(r, c) = landed;
    }
  }
  return st;
}

}  // namespace lpu::compiler
