// Scheduling pass: layer by layer placement of the lowered model (see schedule.h).
#include "compiler/passes/schedule.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <map>

namespace lpu::compiler {

namespace {

void add_stats(MatmulStats* a, const MatmulStats& b) {
  a->abc += b.abc;
  a->lw += b.lw;
  a->iw += b.iw;
  a->acc += b.acc;
  a->reads += b.reads;
  a->writes += b.writes;
  a->vxm += b.vxm;
  a->first_issue = std::min(a->first_issue, b.first_issue);
  a->last_end = std::max(a->last_end, b.last_end);
}

std::vector<uint8_t> to_f16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = ir::f32_to_f16(v[i]);
    out[2 * i] = static_cast<uint8_t>(h & 0xFF);
    out[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  return out;
}

std::vector<uint8_t> to_f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());  // little-endian host (x86/arm64 Linux)
  return out;
}

}  // namespace

ScheduledModel schedule_model(const ir::Graph& g, const LoweredModel& lm, ScheduleBuilder& b, SramAllocator& alloc,
                              const TilingOptions& tiling) {
  const uint32_t lanes = b.cfg().vector_bytes();
  MatmulScheduler mm(b);
  ScheduledModel res;
  std::map<ir::TensorId, PlacedTensor> placed;  // ordered by id: deterministic
  std::map<ir::TensorId, std::vector<int>> alloc_ids;
  auto is_output = [&](ir::TensorId t) {
    return std::find(lm.outputs.begin(), lm.outputs.end(), t) != lm.outputs.end();
  };
  for (const LoweredInput& in : lm.inputs) {
    bool used = false;
    for (const LoweredLayer& L : lm.layers) used = used || L.x == in.alias;
    if (!used) continue;
    PlacedTensor t = place_tensor(alloc, g.tensor(in.id).name, DType::F16, in.shape, tiling, &alloc_ids[in.alias]);
    for (TensorDesc& d : tensor_descs(t, TensorRole::Input)) res.descs.push_back(std::move(d));
    if (in.shape != g.tensor(in.id).shape)
      res.diagnostics.push_back(fmt::format("input '{}' is laid out as {} (Reshape folded)", g.tensor(in.id).name,
                                            ir::shape_str(in.shape)));
    placed.emplace(in.alias, std::move(t));
  }
  res.diagnostics.push_back("precision fp16: inputs and weights f16, accumulation f32, hidden activations f16, "
                            "outputs f32");
  for (size_t li = 0; li < lm.layers.size(); ++li) {
    const LoweredLayer& L = lm.layers[li];
    PlacedWeights w = place_weights(alloc, L.name + ".W", DType::F16, L.K, L.N, to_f16_bytes(L.w), tiling, lanes,
                                    &res.blobs);
    PlacedTensor bias;
    if (!L.bias.empty()) {
      std::vector<int> ids;
      bias = place_tensor(alloc, L.name + ".bias", DType::F32, {1, L.N}, tiling, &ids);
      tensor_blobs(bias, to_f32_bytes(L.bias), lanes, &res.blobs);
    }
    const bool out = is_output(L.y);
    const ir::Tensor& yt = g.tensor(L.y);
    PlacedTensor y = place_tensor(alloc, yt.name, out ? DType::F32 : DType::F16, yt.shape, tiling, &alloc_ids[L.y]);
    PlacedTensor& x = placed.at(L.x);
    MatmulSpec spec;
    spec.name = L.name;
    spec.x = &x;
    spec.w = &w;
    spec.y = &y;
    spec.bias = L.bias.empty() ? nullptr : &bias;
    spec.relu = L.relu;
    add_stats(&res.stats, mm.schedule(spec));
    res.macs += static_cast<uint64_t>(x.rows) * static_cast<uint64_t>(L.K) * static_cast<uint64_t>(L.N);
    if (out)
      for (TensorDesc& d : tensor_descs(y, TensorRole::Output)) res.descs.push_back(std::move(d));
    placed.emplace(L.y, std::move(y));
    // Release activations no later layer reads (graph inputs and outputs stay).
    bool later = false;
    for (size_t lj = li + 1; lj < lm.layers.size(); ++lj) later = later || lm.layers[lj].x == L.x;
    bool is_input = false;
    for (const LoweredInput& in : lm.inputs) is_input = is_input || in.alias == L.x;
    if (!later && !is_input && !is_output(L.x))
      for (int id : alloc_ids[L.x]) alloc.release(id, x.last_read);
  }
  return res;
}

}  // namespace lpu::compiler
