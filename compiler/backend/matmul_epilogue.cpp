// MatmulScheduler::Run, part 3: one accumulator drain. The row's partial accumulators (one plane's,
// or the planes of a split job group, timed to meet at the VXM) are emitted by `acc` and pass
// through the VXM epilogue (partial sums, int8 rescale, row divisor, bias, residual, relu,
// conversion, the optional i8 second output) to Y's slices (matmul_run.h lists the parts).
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "compiler/backend/matmul_detail.h"
#include "compiler/backend/matmul_run.h"
#include "compiler/backend/vxm_instr.h"
#include "isa/chip_config.h"

namespace lpu::compiler {

using namespace matmul_detail;

// One VXM op: reads c.cur (and optionally b, c) on c.T, its result of `width` bytes on c.T + latency
// becomes c.cur, flowing toward c.to if final_op (else away from it, or toward it if that is full).
bool MatmulScheduler::Run::vop(Chain& c, Instr in, const StreamValue* bsrc, uint32_t width, bool final_op,
                               const StreamValue* csrc) {
  if (c.T == UINT64_MAX) return false;
  in.set(Field::SrcA, c.cur.ref().encode());
  if (bsrc) in.set(Field::SrcB, bsrc->ref().encode());
  if (csrc) in.set(Field::SrcC, csrc->ref().encode());
  const uint64_t lat = instr_timing(cfg, in).latency;
  StreamValue out;
  const Dir d1 = final_op ? c.to : opposite(c.to);
  if (!b_.produce(d1, width, vxm_pos_, c.T + lat, &out) &&
      (final_op || !b_.produce(c.to, width, vxm_pos_, c.T + lat, &out)))
    return false;
  in.set(Field::Dst, out.ref().encode());
  if (!b_.issue_any(vxm_slice_, c.T, in)) return false;
  c.cur = out;
  c.T += lat;
  ++c.nvxm;
  return true;
}

// A side op on cycle t reading a (and b) on the VXM, its result of `width` bytes on t + latency (the
// chain's value c.cur is untouched).
bool MatmulScheduler::Run::side_op(Chain& c, Instr in, const StreamValue& a, const StreamValue* b, uint64_t t,
                                   StreamValue* out, uint32_t width) {
  in.set(Field::SrcA, a.ref().encode());
  if (b) in.set(Field::SrcB, b->ref().encode());
  const uint64_t lat = instr_timing(cfg, in).latency;
  const Dir d1 = opposite(c.to);
  if (!b_.produce(d1, width, vxm_pos_, t + lat, out) && !b_.produce(c.to, width, vxm_pos_, t + lat, out))
    return false;
  in.set(Field::Dst, out->ref().encode());
  if (!b_.issue_any(vxm_slice_, t, in)) return false;
  ++c.nvxm;
  return true;
}

// Row 0 of t (scale or bias), column tile c.dr.nt, at the VXM on cycle `at` (mostly c.T): a value
// already on a stream then, else a fetch.
bool MatmulScheduler::Run::erow(Chain& c, PlacedTensor* t, uint64_t at, StreamValue* out) {
  if (at == UINT64_MAX) return false;
  const auto key = std::make_tuple(static_cast<const PlacedTensor*>(t), c.dr.nt, at);
  const auto hit = ecache.find(key);
  if (hit != ecache.end()) {
    *out = hit->second;
    return true;
  }
  // [1, N], or [copies * Nt, lanes] with row c * Nt + nt holding column tile nt
  // (MatmulSpec::scale): copy (at + i) % copies is tried i-th, so the fetches of
  // successive cycles spread over the copies' slices.
  const bool per_tile = t->vpr == 1 && (t->rows > 1 || Nt == 1);
  const int64_t copies = per_tile ? t->rows / static_cast<int64_t>(Nt) : 1;
  for (int64_t i = 0; i < copies; ++i) {
    const int64_t row =
        per_tile ? static_cast<int64_t>((at + static_cast<uint64_t>(i)) % static_cast<uint64_t>(copies)) *
                           static_cast<int64_t>(Nt) +
                       c.dr.nt
                 : 0;
    const auto& ts = t->part_of_row(row).slices;
    const uint32_t taddr = per_tile ? t->addr_of(row, 0) : t->addr_of(0, c.dr.nt);
    const Dir tdir = b_.pos(ts[0]) < vxm_pos_ ? Dir::East : Dir::West;
    if (!b_.fetch(ts, taddr, vxm_pos_, at, tdir, 0, out)) continue;
    c.fetched.emplace_back(key, *out);
    return true;
  }
  return false;
}

// Vector v of activation t's row `row` fetched to be at the VXM on cycle `at`; if it lands too late
// for `at`, sets c.skip to the cycles until it can and fails (the attempt retries from there). The
// residual's rows and the row divisor's.
bool MatmulScheduler::Run::fetch_act(Chain& c, const PlacedTensor* t, int64_t row, uint32_t v, uint64_t at,
                                     StreamValue* out) {
  const auto& rs = t->part_of_row(row).slices;
  const uint64_t ready = t->ready[static_cast<size_t>(row * t->vpr + v)];
  uint64_t far = 0;
  for (uint16_t sl : rs)
    far = std::max(far, pos_gap(b_.pos(sl), vxm_pos_));
  if (at < ready + lat_read + far) {
    c.skip = ready + lat_read + far - at;
    return false;
  }
  return b_.fetch(rs, t->addr_of(row, v), vxm_pos_, at, b_.pos(rs[0]) < vxm_pos_ ? Dir::East : Dir::West,
                  ready, out);
}

// c.cur (of type `from`) -> f32 -> times inv (`muli`) -> i8, the last op toward c.to.
bool MatmulScheduler::Run::quantize(Chain& c, DType from, float inv) {
  bool q_ok = from == DType::F32 || vop(c, cvt_instr(from, DType::F32), nullptr, 4, false);
  q_ok = q_ok && vop(c, muli_f32(inv), nullptr, 4, false);
  return q_ok && vop(c, cvt_instr(DType::F32, DType::I8), nullptr, 1, true);
}

// The epilogue after the acc(s): c.cur holds the leader's partial row (vals[0]) on its stream. The
// chain's value ends as Y's stored value (c.cur) and, with a second output, Y2's (*q).
bool MatmulScheduler::Run::epilogue(Chain& c, const std::vector<StreamValue>& vals, StreamValue* q) {
  const bool need_cvt = Y.dtype != ep_t;
  c.T = c.cur.time_at(vxm_pos_);
  bool ok = true;
  // Sum the partial rows of a split job (each arrives at the VXM when needed).
  for (size_t g = 1; g < vals.size() && ok; ++g) {
    if (vals[g].time_at(vxm_pos_) != c.T) throw std::logic_error("matmul: partial row misses the VXM");
    ok = vop(c, make_instr(Opcode::Add, acc_t), &vals[g], 4,
             g + 1 == vals.size() && !rescale && !spec.bias && !spec.relu && !need_cvt);
  }
  // int8: acc (i32) -> f32, times the per-column scale row (passes/quantize.h).
  if (ok && rescale) ok = vop(c, cvt_instr(acc_t, DType::F32), nullptr, 4, false);
  // A per-row divisor (MatmulSpec::row_div): product row dr.m's value at the VXM on T, `div`
  // before the scale.
  if (ok && RowDiv) {
    StreamValue dv;
    ok = c.T != UINT64_MAX && fetch_act(c, RowDiv, c.dr.m, 0, c.T, &dv) &&
         vop(c, make_instr(Opcode::Div, DType::F32), &dv, 4, false);
    if (ok) spec.row_div->last_read = std::max(spec.row_div->last_read, c.T);
  }
  ok = ok && scale_and_bias(c, need_cvt);
  if (ok && res8) ok = add_i8_residual(c, need_cvt);
  // With a narrowing output conversion the relu runs after it, on the narrow value (fewer
  // stream bytes; the same result: the conversion is monotone, maps 0 to 0 and NaN to
  // 0 (int) or NaN (f16), and relu maps NaN to 0).
  const bool relu_late = spec.relu && need_cvt;
  if (ok && spec.relu && !relu_late) ok = vop(c, make_instr(Opcode::Relu, ep_t), nullptr, 4, !need_cvt);
  const uint32_t ybytes = static_cast<uint32_t>(dtype_bytes(Y.dtype));
  if (ok && need_cvt && !Res16) ok = vop(c, cvt_instr(ep_t, Y.dtype), nullptr, ybytes, !relu_late);
  if (ok && relu_late && !Res16) ok = vop(c, make_instr(Opcode::Relu, Y.dtype), nullptr, ybytes, true);
  // The fused residual: the result rounded to f16 (what the product alone would store),
  // plus R's row ym, column tile dr.nt (`add.f16`), the relu on the f16 sum, and for an
  // i8 Y the sum widened, times y_inv_scale and converted to i8.
  const bool res16_y8 = Res16 && Y.dtype == DType::I8;  // the f16 sum quantized to an i8 Y
  if (ok && Res16) ok = vop(c, cvt_instr(ep_t, DType::F16), nullptr, 2, false);
  if (ok && Res16) {
    StreamValue rv;
    ok = fetch_act(c, Res, c.ym, c.dr.nt, c.T, &rv);
    if (ok) {
      ok = vop(c, make_instr(Opcode::Add, DType::F16), &rv, 2, !spec.relu && !res16_y8);
      spec.residual->last_read = std::max(spec.residual->last_read, c.T);
    }
  }
  if (ok && Res16 && spec.relu) ok = vop(c, make_instr(Opcode::Relu, DType::F16), nullptr, 2, !res16_y8);
  if (ok && res16_y8) ok = quantize(c, DType::F16, spec.y_inv_scale);
  // The second output: Y's stored value (at the VXM on T) quantized toward Y2's slices.
  if (ok && Y2) {
    const StreamValue yv = c.cur;
    c.to = c.y2dir;
    ok = quantize(c, Y.dtype, spec.y2_inv_scale);
    *q = c.cur;
    c.cur = yv;
  }
  return ok;
}

// The int8 rescale and the bias: with the fused multiply-add (chip config vxm.fused_multiply_add)
// one `fma` (both rows fetched for its cycle): acc * scale + bias; else a `mul` and an `add`.
bool MatmulScheduler::Run::scale_and_bias(Chain& c, bool need_cvt) {
  bool ok = true;
  const bool fma = rescale && spec.bias && cfg.vxm_fma;
  if (fma) {
    StreamValue sv, bv;
    ok = erow(c, spec.scale, c.T, &sv) && erow(c, spec.bias, c.T, &bv);
    if (ok) {
      ok = vop(c, make_instr(Opcode::Fma, DType::F32), &sv, 4, !spec.relu && !need_cvt, &bv);
      spec.scale->last_read = std::max(spec.scale->last_read, c.T);
      spec.bias->last_read = std::max(spec.bias->last_read, c.T);
    }
  }
  if (ok && rescale && !fma) {
    StreamValue sv;
    ok = erow(c, spec.scale, c.T, &sv);
    if (ok) {
      ok = vop(c, make_instr(Opcode::Mul, DType::F32), &sv, 4, !spec.bias && !spec.relu && !need_cvt);
      spec.scale->last_read = std::max(spec.scale->last_read, c.T);
    }
  }
  if (ok && spec.bias && !fma) {
    StreamValue bv;
    ok = erow(c, spec.bias, c.T, &bv);
    if (ok) {
      ok = vop(c, make_instr(Opcode::Add, ep_t), &bv, 4, !spec.relu && !need_cvt);
      spec.bias->last_read = std::max(spec.bias->last_read, c.T);
    }
  }
  return ok;
}

// An i8 residual: R's row ym, column tile dr.nt, reaches the VXM earlier and is widened
// (`cvt i8 -> f32`) on another queue so that, on T, `fma` (R, its scale row, the result)
// adds it in f32 (without the fused multiply-add: `mul` by the scale row on the side,
// then `add`).
bool MatmulScheduler::Run::add_i8_residual(Chain& c, bool need_cvt) {
  const Instr cvt = cvt_instr(DType::I8, DType::F32);
  const Instr mul = make_instr(Opcode::Mul, DType::F32);
  const uint64_t lat_cvt = instr_timing(cfg, cvt).latency;
  const uint64_t side = lat_cvt + (cfg.vxm_fma ? 0 : instr_timing(cfg, mul).latency);
  // R's row reaches the VXM on T - side for the `cvt`, or k * (mov latency) earlier and is
  // held by k `mov.i8`s: the epilogue's template is rigid, so a read that collides with
  // one of its own (R's slice holding a scale or bias row fetched for the same cycle,
  // which depends on the latencies: tsp-v1 without the fma) would otherwise collide on
  // every cycle tried.
  const Instr mov8 = make_instr(Opcode::Mov, DType::I8);
  const uint64_t lat_mov = instr_timing(cfg, mov8).latency;
  StreamValue rv, rf, sv;
  bool ok = false;
  for (uint64_t k = 0; c.T != UINT64_MAX && k <= kMaxEpilogueRetime && c.T >= side + k * lat_mov; ++k) {
    const auto txk = b_.begin();
    const uint64_t nvxm_k = c.nvxm;
    uint64_t t = c.T - side - k * lat_mov;
    bool got = fetch_act(c, Res, c.ym, c.dr.nt, t, &rv);
    for (uint64_t m = 0; got && m < k; ++m, t += lat_mov) got = side_op(c, mov8, rv, nullptr, t, &rv, 1);
    if (got && side_op(c, cvt, rv, nullptr, t, &rf)) {
      ok = true;
      break;
    }
    b_.rollback(txk);
    c.nvxm = nvxm_k;
    // R not ready for this read: the attempt moves on, by skip when k == 0 (R's readiness
    // alone decides there), else by one cycle.
    if (c.skip > 0) {
      if (k > 0) c.skip = 0;
      break;
    }
  }
  if (ok && cfg.vxm_fma) {  // cur = R * rscale + cur
    ok = erow(c, spec.res_scale, c.T, &sv);
    if (ok) {
      Instr f = make_instr(Opcode::Fma, DType::F32);
      f.set(Field::SrcC, c.cur.ref().encode());
      c.cur = rf;
      ok = vop(c, f, &sv, 4, !spec.relu && !need_cvt);
    }
  } else if (ok) {  // cur = cur + R * rscale, the product on the side
    const uint64_t tm = c.T - instr_timing(cfg, mul).latency;
    StreamValue rr;
    ok = erow(c, spec.res_scale, tm, &sv) && side_op(c, mul, rf, &sv, tm, &rr);
    ok = ok && vop(c, make_instr(Opcode::Add, DType::F32), &rr, 4, !spec.relu && !need_cvt);
  }
  if (ok) {
    spec.residual->last_read = std::max(spec.residual->last_read, c.T);
    spec.res_scale->last_read = std::max(spec.res_scale->last_read, c.T);
  }
  return ok;
}

// The attempt's drain: the acc(s) placed, then (unless every row is stored as accumulated) the
// epilogue chain; the attempt retries one cycle later (or `skip` cycles, when a residual or divisor
// row is not readable yet) until the row is stored.
void MatmulScheduler::Run::issue_acc(size_t best_p, PS& s, uint64_t e) {
  const Drain dr = s.drain.front();
  // The partial rows to emit: just this plane's, or the G planes of a split job group.
  struct Part {
    size_t plane;
    int64_t accrow;
    size_t local_job;
    int64_t off;
  };
  std::vector<Part> prt;
  if (dr.group < 0) {
    prt.push_back({static_cast<size_t>(best_p), dr.accrow, dr.local_job, 0});
  } else {
    const uint32_t Gg = gsz[static_cast<size_t>(dr.group)];
    for (uint32_t g = 0; g < Gg; ++g) {
      const PartRec& pr = parts[static_cast<size_t>(dr.group)][static_cast<size_t>(dr.idx) * Gg + g];
      prt.push_back(
          {pr.plane, pr.accrow, pr.local_job, part_offset(static_cast<size_t>(best_p), pr.plane, g)});
    }
  }
  const int64_t ym = yrow(dr.m);
  const auto& ys = Y.part_of_row(ym).slices;
  const uint32_t yaddr = Y.addr_of(ym, dr.nt);
  const Dir ydir = b_.pos(ys[0]) > vxm_pos_ ? Dir::East : Dir::West;
  const std::vector<uint16_t> no_slices;
  const auto& y2s = Y2 ? Y2->part_of_row(ym).slices : no_slices;
  const uint32_t y2addr = Y2 ? Y2->addr_of(ym, dr.nt) : 0;
  const Dir y2dir = Y2 && b_.pos(y2s[0]) > vxm_pos_ ? Dir::East : Dir::West;
  uint64_t a = e, landed = 0, landed2 = 0;
  std::vector<StreamValue> vals(prt.size());
  Chain c(dr, ym, ydir, y2dir);
  for (uint64_t n = 0;; ++a, ++n) {
    if (n > kMaxSearch) no_slot(spec.name + " acc");
    auto x = b_.begin();
    bool ok = true;
    c.skip = 0;
    c.nvxm = 0;
    c.fetched.clear();
    for (size_t g = 0; g < prt.size() && ok; ++g) {
      const int64_t ag = static_cast<int64_t>(a) + prt[g].off;
      const Plane& pg = planes_[prt[g].plane];
      Instr acc = make_instr(Opcode::Acc, acc_t);
      acc.set(Field::Plane, pg.plane);
      acc.set(Field::Row, static_cast<uint32_t>(prt[g].accrow));
      ok = ag >= 0 && b_.free_queue(pg.slice, static_cast<uint64_t>(ag), acc) >= 0 &&
           b_.produce(pg.dir_out, 4, pg.pos, static_cast<uint64_t>(ag) + lat_acc, &vals[g]);
      if (ok) {
        acc.set(Field::Dst, vals[g].ref().encode());
        ok = k_.issue_pref(pg.slice, pg.q_acc, static_cast<uint64_t>(ag), acc);
      }
    }
    if (!ok) {
      b_.rollback(x);
      continue;
    }
    c.cur = vals[0];
    c.to = ydir;
    StreamValue q;  // the second output's value (Y2)
    if (!direct_all) ok = epilogue(c, vals, &q);
    if (ok) ok = b_.store(c.cur, ys, yaddr, Y.write_not_before_row(ym), &landed);
    if (ok && Y2) ok = b_.store(q, y2s, y2addr, Y2->write_not_before_row(ym), &landed2);
    if (!ok) {
      b_.rollback(x);
      if (c.skip > 1) a += c.skip - 1;
      continue;
    }
    break;
  }
  for (const auto& f : c.fetched) ecache.emplace(f.first, f.second);
  st.acc += prt.size();
  st.vxm += c.nvxm;
  st.writes += ys.size() + y2s.size();
  st.last_end = std::max({st.last_end, landed, landed2});
  Y.ready[static_cast<size_t>(ym * Y.vpr + dr.nt)] = landed;
  if (Y2) Y2->ready[static_cast<size_t>(ym * Y2->vpr + dr.nt)] = landed2;
  for (const Part& pt : prt) {
    const uint64_t ag = static_cast<uint64_t>(static_cast<int64_t>(a) + pt.off);
    planes_[pt.plane].acc_read[static_cast<size_t>(pt.accrow)] = ag + 1;
    ps[pt.plane].d_next = std::max(ps[pt.plane].d_next, ag + 1);
    ps[pt.plane].pending[pt.local_job]--;
  }
  s.drain.pop_front();
}

}  // namespace lpu::compiler
