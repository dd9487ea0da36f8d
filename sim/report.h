// Human-readable and JSON reports of a simulated run: time, utilization, SRAM, energy, power and
// throughput of declared work. JSON keys are documented in docs/report-schema.md (additions only).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "isa/chip_config.h"
#include "isa/program.h"
#include "sim/simulator.h"

namespace lpu::sim {

constexpr int kReportSchemaVersion = 1;

// Multi-line text report (ends with a newline). Deterministic: depends only on the arguments.
std::string text_report(const Program& prog, const ChipConfig& cfg, const SimResult& r);

// The same figures as JSON with a fixed key order (docs/report-schema.md).
nlohmann::ordered_json json_report(const Program& prog, const ChipConfig& cfg, const SimResult& r);

}  // namespace lpu::sim
