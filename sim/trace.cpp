// Chrome trace-event writer: metadata (process per chip, thread per queue) then one complete ("X")
// event per executed instruction, with its assembly text (repeat steps applied) and issue cycle.
#include "sim/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <stdexcept>
#include <tuple>

#include "isa/asm.h"

namespace lpu::sim {

namespace {

// Track id of a queue: ordered west to east by slice, then by queue.
uint32_t track_id(uint32_t slice, uint32_t queue) { return slice * 64 + queue; }

// Assembly text is plain ASCII from format_instr, but escape anyway so the JSON is always valid.
std::string json_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      o += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      o += c;
    }
  }
  return o;
}

}  // namespace

void write_chrome_trace(std::ostream& out, const Program& prog, const ChipConfig& cfg, const SimResult& r) {
  out << "{\"otherData\":{\"tool\":\"lpusim\",\"config\":\"" << json_escape(cfg.name)
      << "\",\"time_unit\":\"1 us in this trace = 1 simulated cycle\",\"clock_hz\":"
      << fmt::format("{:.0f}", cfg.clock_hz) << ",\"cycles\":" << r.cycles << "},\n\"traceEvents\":[";
  bool first = true;
  auto sep = [&]() { out << (first ? "\n" : ",\n"); first = false; };

  // Metadata: name every chip and every queue that has code.
  for (uint32_t c = 0; c < prog.chips.size(); ++c) {
    sep();
    out << fmt::format(R"({{"ph":"M","name":"process_name","pid":{},"args":{{"name":"chip {}"}}}})", c, c);
    for (const QueueCode& q : prog.chips[c].queues) {
      if (q.slice >= cfg.slices.size()) throw std::invalid_argument(fmt::format("trace: slice index {} not in config", q.slice));
      const uint32_t tid = track_id(q.slice, q.queue);
      sep();
      out << fmt::format(R"({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":"{}.{}"}}}})", c, tid,
                         json_escape(cfg.slices[q.slice].name), q.queue);
      sep();
      out << fmt::format(R"({{"ph":"M","name":"thread_sort_index","pid":{},"tid":{},"args":{{"sort_index":{}}}}})", c,
                         tid, tid);
    }
  }

  // (chip, slice, queue) -> queue code, and how many times each instruction has issued so far
  // (the k-th issue of an instruction is its k-th repeat iteration: its step field is + k).
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, const QueueCode*> code;
  for (uint32_t c = 0; c < prog.chips.size(); ++c)
    for (const QueueCode& q : prog.chips[c].queues) code[{c, q.slice, q.queue}] = &q;
  std::map<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>, uint32_t> issued;

  for (const TraceEvent& e : r.trace) {
    auto it = code.find({e.chip, e.slice, e.queue});
    if (it == code.end() || e.instr_index >= it->second->code.size())
      throw std::invalid_argument(fmt::format("trace: event on chip {} slice {} queue {} instruction {} is not in the program",
                                              e.chip, e.slice, e.queue, e.instr_index));
    Instr in = it->second->code[e.instr_index];
    const uint32_t k = issued[{e.chip, e.slice, e.queue, e.instr_index}]++;
    const Field step = op_info(in.op).step;
    if (k > 0 && step != Field::None) in.set(step, in.get(step) + k);
    sep();
    out << fmt::format(
        R"({{"ph":"X","name":"{}","pid":{},"tid":{},"ts":{},"dur":{},"args":{{"asm":"{}","issue":{},"latency":{},"occupancy":{},"instr_index":{}}}}})",
        op_info(e.op).mnemonic, e.chip, track_id(e.slice, e.queue), e.issue, std::max<uint32_t>(e.occupancy, 1),
        json_escape(format_instr(in)), e.issue, e.latency, e.occupancy, e.instr_index);
  }
  out << "\n]}\n";
}

void write_chrome_trace_file(const std::string& path, const Program& prog, const ChipConfig& cfg, const SimResult& r) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open the trace file for writing", path));
  write_chrome_trace(f, prog, cfg, r);
  f.flush();
  if (!f) throw InputError(fmt::format("{}: writing the trace failed", path));
}

}  // namespace lpu::sim
