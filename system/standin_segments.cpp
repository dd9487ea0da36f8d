// Dense stand-in pieces (see standin_segments.h).
#include "system/standin_segments.h"

#include <fmt/format.h>

#include "isa/chip_config.h"

namespace lpu::system {

ir::Graph standin_segment(const llm::LlmConfig& m, const llm::SegmentSpec& s) {
  const int64_t tp = s.shard.size;
  auto need = [&](int64_t v, const char* field) {
    if (v % tp) throw InputError(fmt::format("{}: {} = {} is not divisible by the shard size {}", m.name, field, v, tp));
    return v / tp;
  };
  ir::Graph g;
  g.name = fmt::format("{}-standin", m.name);
  const int64_t R = s.shape.batch * s.shape.tokens;
  const ir::TensorId x = g.add_input("x", ir::DType::F32, {R, m.hidden});
  int n = 0;
  auto op = [&](ir::OpKind k, std::vector<ir::TensorId> in, ir::Shape shape, const std::string& name = "") {
    const std::string nm = name.empty() ? fmt::format("t{}", n++) : name;
    const ir::TensorId y = g.add_tensor(nm, ir::DType::F32, shape);
    ir::Op o;
    o.kind = k;
    o.name = nm;
    o.inputs = std::move(in);
    o.outputs = {y};
    g.add_op(std::move(o));
    return y;
  };
  auto weight = [&](int64_t K, int64_t N) {
    return g.add_constant_floats(fmt::format("w{}", n++), {K, N}, std::vector<float>(static_cast<size_t>(K * N), 0.0f));
  };
  auto finish = [&](ir::TensorId y, const std::string& out) {
    if (s.shard.rank == 0) y = op(ir::OpKind::Add, {y, x}, {R, m.hidden}, out);
    return y;
  };
  switch (s.kind) {
    case llm::SegmentKind::LmHead: {
      const int64_t v = need(m.vocab, "vocab");
      g.mark_output(op(ir::OpKind::MatMul, {x, weight(m.hidden, v)}, {R, v}, "logits"));
      break;
    }
    case llm::SegmentKind::Attention: {
      // tp wider than the kv heads: one replicated kv head per shard (llm/segments.h).
      const int64_t kvs = tp > m.kv_heads && tp % m.kv_heads == 0 ? 1 : need(m.kv_heads, "kv_heads");
      const int64_t q = need(m.heads, "heads") * m.head_dim, kv = kvs * m.head_dim;
      const ir::TensorId qt = op(ir::OpKind::MatMul, {x, weight(m.hidden, q)}, {R, q});
      ir::TensorId y = op(ir::OpKind::MatMul, {qt, weight(q, m.hidden)}, {R, m.hidden}, s.shard.rank ? "partial" : "");
      g.mark_output(finish(y, "partial"));
      g.mark_output(op(ir::OpKind::MatMul, {x, weight(m.hidden, 2 * kv)}, {R, 2 * kv}, "kv_new"));
      break;
    }
    case llm::SegmentKind::Ffn: {
      const int64_t experts = m.experts > 0 ? need(m.experts, "experts") : 1;
      const int64_t f = m.experts > 0 ? m.ffn : need(m.ffn, "ffn");
      ir::TensorId acc = ir::kNoTensor;
      for (int64_t e = 0; e < experts; ++e) {
        ir::TensorId h = op(ir::OpKind::MatMul, {x, weight(m.hidden, f)}, {R, f});
        if (m.gated_ffn)
          h = op(ir::OpKind::Mul, {op(ir::OpKind::MatMul, {x, weight(m.hidden, f)}, {R, f}), h}, {R, f});
        else
          h = op(ir::OpKind::Relu, {h}, {R, f});
        const bool last = e + 1 == experts;
        ir::TensorId y = op(ir::OpKind::MatMul, {h, weight(f, m.hidden)}, {R, m.hidden},
                            last && acc == ir::kNoTensor && s.shard.rank ? "partial" : "");
        if (acc != ir::kNoTensor)
          y = op(ir::OpKind::Add, {acc, y}, {R, m.hidden}, last && s.shard.rank ? "partial" : "");
        acc = y;
      }
      g.mark_output(finish(acc, "partial"));
      break;
    }
  }
  return g;
}

}  // namespace lpu::system
