// retype_f16: see f16_retype.h.
#include "compiler/reference/f16_retype.h"

namespace lpu::ref {

ir::Graph retype_f16(const ir::Graph& g) {
  ir::Graph h = g;
  for (size_t i = 0; i < h.tensors().size(); ++i) {
    ir::Tensor& t = h.mutable_tensor(static_cast<ir::TensorId>(i));
    if (t.dtype != ir::DType::F32) continue;
    if (t.is_const) {
      const std::vector<float> v = t.const_floats();
      t.data.assign(v.size() * 2, 0);
      for (size_t k = 0; k < v.size(); ++k) {
        const uint16_t b = ir::f32_to_f16(v[k]);
        t.data[2 * k] = static_cast<uint8_t>(b & 0xFF);
        t.data[2 * k + 1] = static_cast<uint8_t>(b >> 8);
      }
    }
    t.dtype = ir::DType::F16;
  }
  for (size_t i = 0; i < h.ops().size(); ++i) {
    ir::Op& op = h.mutable_op(static_cast<int>(i));
    if (op.kind == ir::OpKind::Cast && op.attr_int("to") == static_cast<int64_t>(ir::DType::F32))
      op.attrs["to"] = static_cast<int64_t>(ir::DType::F16);
  }
  return h;
}

}  // namespace lpu::ref
