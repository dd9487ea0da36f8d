// Tiling pass: SRAM layouts of activations (row blocks) and weights (spread tiles), and their blobs.
#include "compiler/passes/tiling.h"

#include <fmt/format.h>

#include <algorithm>

namespace lpu::compiler {

int64_t stored_rows(const std::vector<int64_t>& shape) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  return rows;
}

bool port_split_applies(const TilingOptions& opt, int64_t rows) {
  return opt.port_split_min_rows > 0 && rows >= opt.port_split_min_rows && opt.port_split_parts > 1;
}

PlacedTensor place_tensor(SramAllocator& alloc, const std::string& name, DType dtype,
                          const std::vector<int64_t>& shape, const TilingOptions& opt,
                          std::vector<int>* alloc_ids,
                          const std::function<uint64_t(int64_t, int64_t)>* part_hint) {
  const ChipConfig& cfg = alloc.cfg();
  PlacedTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  t.inner = shape.empty() ? 1 : shape.back();
  t.rows = stored_rows(shape);
  const uint32_t lanes = cfg.vector_bytes();
  t.vpr = static_cast<uint32_t>((t.inner + lanes - 1) / lanes);
  if (t.vpr > cfg.sram_addresses)
    throw InputError(
        fmt::format("tensor '{}': a row of {} elements needs {} vectors, more than the {} addresses "
                    "of a MEM slice (chip '{}')",
                    name, t.inner, t.vpr, cfg.sram_addresses, cfg.name));
  int64_t part_rows = std::min<int64_t>(t.rows, cfg.sram_addresses / t.vpr);
  if (port_split_applies(opt, t.rows))
    part_rows =
        std::min(part_rows, std::min(opt.port_split_max_part_rows,
                                     std::max(opt.port_split_min_part_rows,
                                              (t.rows + opt.port_split_parts - 1) / opt.port_split_parts)));
  part_rows = std::max<int64_t>(1, part_rows);
  t.part_rows = part_rows;
  for (int64_t r0 = 0; r0 < t.rows; r0 += part_rows) {
    TensorPart p;
    p.row0 = r0;
    p.rows = std::min(part_rows, t.rows - r0);
    uint64_t nb = 0;
    const std::string pname = t.rows > part_rows ? fmt::format("{}.rows_{}_{}", name, r0, r0 + p.rows) : name;
    if (part_hint) alloc.set_write_hint((*part_hint)(p.row0, p.row0 + p.rows));  // the part's first write
    const int id = alloc.alloc(pname, static_cast<uint32_t>(dtype_bytes(dtype)),
                               static_cast<uint32_t>(p.rows * t.vpr), &p.slices, &p.addr, &nb);
    if (part_hint) alloc.set_write_hint(UINT64_MAX);
    if (alloc_ids) alloc_ids->push_back(id);
    p.write_not_before = nb;
    t.write_not_before = std::max(t.write_not_before, nb);
    t.parts.push_back(std::move(p));
  }
  t.ready = std::vector<uint64_t>(static_cast<size_t>(t.rows * t.vpr));
  return t;
}

namespace {

using RowRanges = std::vector<std::pair<uint32_t, uint32_t>>;

// Row k of W (K rows of N weights of B bytes) must be all zero (what: which rows these are).
void require_zero_row(const std::vector<uint8_t>& data, int64_t N, int B, int64_t k, const char* what) {
  for (size_t i = static_cast<size_t>(k * N * B); i < static_cast<size_t>((k + 1) * N * B); ++i)
    if (data[i] != 0)
      throw std::logic_error(std::string("place_weights: non-zero weight row outside the ") + what);
}

// w.lo / w.hi, the stored rows per k-tile: the given ranges (view segments) or all lanes rows (the
// last k-tile's rows past K stay stored as zeros: the LLM planner's placed_weight_bytes mirrors
// that layout). Returns the stored rows of all tiles. Rows outside the stored ranges must be zero:
// they are never loaded (the install zeroes them).
uint64_t set_stored_rows(PlacedWeights& w, const std::vector<uint8_t>& data, int B, uint32_t lanes,
                         const RowRanges* tile_rows) {
  if (tile_rows && tile_rows->size() != w.Kt)
    throw std::logic_error("place_weights: one row range per k-tile");
  uint64_t rows_total = 0;
  for (uint32_t kt = 0; kt < w.Kt; ++kt) {
    const uint32_t valid = w.valid_rows(kt, lanes);
    const uint32_t lo = tile_rows ? (*tile_rows)[kt].first : 0,
                   hi = tile_rows ? (*tile_rows)[kt].second : lanes;
    if (lo > hi || hi > (tile_rows ? valid : lanes))
      throw std::logic_error("place_weights: row range outside the k-tile");
    w.lo.push_back(lo);
    w.hi.push_back(hi);
    rows_total += uint64_t{hi - lo} * w.Nt;
  }
  if (tile_rows && !data.empty())
    for (int64_t k = 0; k < w.K; ++k)
      if (!w.stored(static_cast<uint32_t>(k / lanes), static_cast<uint32_t>(k % lanes)))
        require_zero_row(data, w.N, B, k, "stored rows");
  return rows_total;
}

// w.trans: narrow tiles stored transposed (only a chip with `iwt`): fewer valid columns than the
// rows an untransposed install loads (its columns fit the tile's stored rows, so the layout does
// not change). Rows outside the loaded range must be zero: a transposed tile carries all the
// k-tile's lanes.
void mark_transposed_tiles(PlacedWeights& w, const std::vector<uint8_t>& data, int B, uint32_t lanes,
                           const RowRanges* tile_rows, const RowRanges* loaded) {
  w.trans.assign(static_cast<size_t>(w.Kt) * w.Nt, 0);
  bool any = false;
  for (uint32_t kt = 0; kt < w.Kt; ++kt) {
    const auto lr = loaded      ? (*loaded)[kt]
                    : tile_rows ? (*tile_rows)[kt]
                                : std::make_pair(0u, w.valid_rows(kt, lanes));
    if (lr.first > lr.second || lr.second > w.valid_rows(kt, lanes))
      throw std::logic_error("place_weights: loaded rows outside the k-tile");
    for (uint32_t nt = 0; nt < w.Nt; ++nt) {
      const uint32_t cols = w.valid_cols(nt, lanes);
      if (cols < lr.second - lr.first && cols <= w.hi[kt] - w.lo[kt]) {
        w.trans[static_cast<size_t>(kt) * w.Nt + nt] = 1;
        any = true;
      }
    }
    if (!data.empty())
      for (uint32_t r = 0; r < w.valid_rows(kt, lanes); ++r)
        if (r < lr.first || r >= lr.second)
          require_zero_row(data, w.N, B, static_cast<int64_t>(kt) * lanes + r, "loaded rows");
  }
  if (!any) w.trans.clear();
}

// w's groups (w.groups, rpg, off, group_slices, group_addr, vectors_per_group), allocated. More
// groups when the matrix would not fit half a slice per group (leave room for activations); the
// LLM planner's placed_weight_bytes mirrors this count. Groups that do not all fit (the free space
// cut into ranges shorter than a group, at common addresses of B slices) are taken back and the
// matrix placed again in smaller groups: the next count of at least twice as many that divides the
// lanes and stores no more rows than the first layout (a k-tile of r stored rows takes ceil(r / G)
// x G in G groups), so the planner's count of the first layout stays an upper bound. Only a matrix
// that would not fit otherwise changes layout.
void allocate_groups(SramAllocator& alloc, PlacedWeights& w, int B, uint32_t lanes, uint64_t rows_total,
                     uint32_t weight_groups) {
  const uint64_t per_group = std::max<uint64_t>(1, alloc.cfg().sram_addresses / 2);
  const uint64_t need = (rows_total + per_group - 1) / per_group;
  const uint32_t first_groups = static_cast<uint32_t>(
      std::max<uint64_t>(1, std::min<uint64_t>(std::max<uint64_t>(weight_groups, need), lanes)));
  auto stored_rows = [&](uint32_t g) {
    uint64_t rows = 0;
    for (uint32_t kt = 0; kt < w.Kt; ++kt) rows += uint64_t{(w.hi[kt] - w.lo[kt] + g - 1) / g} * g;
    return rows;
  };
  const SramAllocator::Mark before = alloc.mark();
  const uint64_t first_rows = stored_rows(first_groups);
  std::string first_error;
  for (w.groups = first_groups;;) {
    w.rpg.clear();
    w.off.clear();
    w.group_slices.clear();
    w.group_addr.clear();
    uint32_t off = 0;
    for (uint32_t kt = 0; kt < w.Kt; ++kt) {
      w.rpg.push_back((w.hi[kt] - w.lo[kt] + w.groups - 1) / w.groups);
      w.off.push_back(off);
      off += w.Nt * w.rpg[kt];
    }
    w.vectors_per_group = off;
    try {
      for (uint32_t g = 0; g < w.groups; ++g) {
        std::vector<uint16_t> sl;
        uint32_t addr = 0;
        uint64_t nb = 0;
        alloc.alloc(fmt::format("{}.g{}", w.name, g), static_cast<uint32_t>(B), w.vectors_per_group, &sl,
                    &addr, &nb);
        w.group_slices.push_back(sl);
        w.group_addr.push_back(addr);
      }
      return;
    } catch (const InputError& e) {
      alloc.rollback(before);
      if (first_error.empty()) first_error = e.what();
      uint32_t more = w.groups * 2;
      while (more <= lanes && (lanes % more != 0 || stored_rows(more) > first_rows)) ++more;
      if (more > lanes) {
        if (w.groups == first_groups) throw;
        // The first layout's error names the groups the matrix normally takes.
        throw InputError(fmt::format("{} (nor in {} smaller groups of {} vectors)", first_error, w.groups,
                                     w.vectors_per_group));
      }
      w.groups = more;
    }
  }
}

// The SRAM image of w's weights: one blob per group and byte plane.
void weight_blobs(const PlacedWeights& w, const std::vector<uint8_t>& data, int B, uint32_t lanes,
                  std::vector<DataBlob>* blobs) {
  const int64_t K = w.K, N = w.N;
  for (uint32_t g = 0; g < w.groups; ++g) {
    for (int b = 0; b < B; ++b) {
      DataBlob blob;
      blob.chip = 0;
      blob.slice = w.group_slices[g][static_cast<size_t>(b)];
      blob.addr = w.group_addr[g];
      blob.bytes = std::vector<uint8_t>(static_cast<size_t>(w.vectors_per_group) * lanes);
      for (uint32_t kt = 0; kt < w.Kt; ++kt)
        for (uint32_t nt = 0; nt < w.Nt; ++nt) {
          if (w.transposed(kt, nt)) {  // stored row j = column nt * lanes + j over the tile's lanes
            const uint32_t kv = w.valid_rows(kt, lanes);
            for (uint32_t j = g; j < w.valid_cols(nt, lanes); j += w.groups) {
              const int64_t n = static_cast<int64_t>(nt) * lanes + j;
              const size_t vec = w.addr_of(kt, nt, j) - w.group_addr[g];
              for (uint32_t i = 0; i < kv; ++i) {
                const int64_t k = static_cast<int64_t>(kt) * lanes + i;
                blob.bytes[vec * lanes + i] = data[static_cast<size_t>((k * N + n) * B + b)];
              }
            }
            continue;
          }
          for (uint32_t r = w.lo[kt] + g; r < w.hi[kt]; r += w.groups) {
            const int64_t k = static_cast<int64_t>(kt) * lanes + r;
            if (k >= K) break;
            const size_t vec = w.addr_of(kt, nt, r) - w.group_addr[g];
            for (uint32_t j = 0; j < lanes; ++j) {
              const int64_t n = static_cast<int64_t>(nt) * lanes + j;
              if (n >= N) break;
              blob.bytes[vec * lanes + j] = data[static_cast<size_t>((k * N + n) * B + b)];
            }
          }
        }
      blobs->push_back(std::move(blob));
    }
  }
}

}  // namespace

PlacedWeights place_weights(SramAllocator& alloc, const std::string& name, DType dtype, int64_t K, int64_t N,
                            const std::vector<uint8_t>& data, const TilingOptions& opt, uint32_t lanes,
                            std::vector<DataBlob>* blobs, const RowRanges* tile_rows,
                            const RowRanges* loaded) {
  PlacedWeights w;
  w.name = name;
  w.dtype = dtype;
  w.K = K;
  w.N = N;
  w.Kt = static_cast<uint32_t>((K + lanes - 1) / lanes);
  w.Nt = static_cast<uint32_t>((N + lanes - 1) / lanes);
  const int B = dtype_bytes(dtype);
  if (!data.empty() && data.size() != static_cast<size_t>(K * N * B))
    throw std::logic_error("place_weights: data size mismatch");
  const uint64_t rows_total = set_stored_rows(w, data, B, lanes, tile_rows);
  if (loaded && loaded->size() != w.Kt) throw std::logic_error("place_weights: one loaded range per k-tile");
  if (opt.transpose_narrow_tiles && alloc.cfg().mxm_transposed_install)
    mark_transposed_tiles(w, data, B, lanes, tile_rows, loaded);
  allocate_groups(alloc, w, B, lanes, rows_total, opt.weight_groups);
  if (!data.empty())
    weight_blobs(w, data, B, lanes, blobs);  // zero weights: SRAM starts zeroed, no image needed
  return w;
}

void tensor_blobs(const PlacedTensor& t, const std::vector<uint8_t>& data, uint32_t lanes,
                  std::vector<DataBlob>* blobs) {
  const int B = dtype_bytes(t.dtype);
  for (const TensorPart& p : t.parts) {
    for (int b = 0; b < B; ++b) {
      DataBlob blob;
      blob.slice = p.slices[static_cast<size_t>(b)];
      blob.addr = p.addr;
      blob.bytes = std::vector<uint8_t>(static_cast<size_t>(p.rows * t.vpr) * lanes);
      for (int64_t r = 0; r < p.rows; ++r)
        for (int64_t i = 0; i < t.inner; ++i)
          blob.bytes[static_cast<size_t>(r * t.vpr * lanes + i)] =
              data[static_cast<size_t>(((p.row0 + r) * t.inner + i) * B + b)];
      blobs->push_back(std::move(blob));
    }
  }
}

std::vector<TensorDesc> tensor_descs(const PlacedTensor& t, TensorRole role) {
  std::vector<TensorDesc> out;
  for (const TensorPart& p : t.parts) {
    TensorDesc d;
    d.role = role;
    d.dtype = t.dtype;
    d.slices = p.slices;
    d.addr = p.addr;
    if (t.parts.size() == 1) {
      d.name = t.name;
      d.shape = t.shape;
    } else {
      d.name = fmt::format("{}.rows_{}_{}", t.name, p.row0, p.row0 + p.rows);
      d.shape = {p.rows, t.inner};
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace lpu::compiler
