// Counter-based synthetic weights (see weights.h).
#include "compiler/llm/weights.h"

#include <cmath>

namespace lpu::llm {

namespace {

uint64_t mix(uint64_t z) {  // splitmix64 finalizer
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t tensor_key(uint64_t seed, int64_t layer, Wt t, int64_t expert) {
  uint64_t k = mix(seed);
  k = mix(k ^ static_cast<uint64_t>(layer + 1));
  k = mix(k ^ (static_cast<uint64_t>(t) + 0x100));
  return mix(k ^ static_cast<uint64_t>(expert + 1));
}

bool is_gain(Wt t) { return t == Wt::Norm1G || t == Wt::Norm2G || t == Wt::FinalG || t == Wt::MlmNormG; }

float value(uint64_t key, Wt t, int64_t index) {
  const uint64_t h = mix(key + static_cast<uint64_t>(index) * 0xd1b54a32d192ed03ULL);
  const double u = static_cast<double>(h >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0;  // U[-1, 1)
  if (is_gain(t)) return static_cast<float>(1.0 + 0.1 * u);
  return static_cast<float>(0.02 * std::sqrt(3.0) * u);  // std 0.02
}

}  // namespace

float weight_at(uint64_t seed, int64_t layer, Wt t, int64_t expert, int64_t index) {
  return value(tensor_key(seed, layer, t, expert), t, index);
}

std::vector<float> weight_block(uint64_t seed, int64_t layer, Wt t, int64_t expert, int64_t cols, int64_t r0,
                                int64_t nr, int64_t c0, int64_t nc) {
  const uint64_t key = tensor_key(seed, layer, t, expert);
  std::vector<float> out(static_cast<size_t>(nr * nc));
  for (int64_t r = 0; r < nr; ++r)
    for (int64_t c = 0; c < nc; ++c) out[static_cast<size_t>(r * nc + c)] = value(key, t, (r0 + r) * cols + c0 + c);
  return out;
}

void rope_tables(int64_t head_dim, double theta, int64_t pos0, int64_t count, std::vector<float>* cos_t,
                 std::vector<float>* sin_t) {
  const int64_t half = head_dim / 2;
  cos_t->assign(static_cast<size_t>(count * head_dim), 0.f);
  sin_t->assign(static_cast<size_t>(count * head_dim), 0.f);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t c = 0; c < head_dim; ++c) {
      const double freq = std::pow(theta, -2.0 * static_cast<double>(c % half) / static_cast<double>(head_dim));
      const double a = static_cast<double>(pos0 + i) * freq;
      (*cos_t)[static_cast<size_t>(i * head_dim + c)] = static_cast<float>(std::cos(a));
      (*sin_t)[static_cast<size_t>(i * head_dim + c)] = static_cast<float>(std::sin(a));
    }
}

}  // namespace lpu::llm
