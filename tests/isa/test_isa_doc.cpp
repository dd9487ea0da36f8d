// Tests of the generated ISA reference: docs/isa.md is up to date, the reference covers every
// table row, its latencies/energies come from the chip config, and `lpusim isa` prints it.
#include <catch2/catch.hpp>

#include "tests/support/cli.h"

#include "tests/support/files.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include "isa/chip_config.h"
#include "isa/isa_doc.h"

using namespace lpu;

namespace {

// First line where a and b differ (1-based), for a readable failure.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  for (int n = 1;; ++n) {
    const bool ga = static_cast<bool>(std::getline(sa, la)), gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) return "none";
    if (!ga || !gb || la != lb)
      return "line " + std::to_string(n) + ":\n  docs/isa.md: " + (ga ? la : "<end>") + "\n  generator:   " + (gb ? lb : "<end>");
  }
}

}  // namespace

TEST_CASE("isadoc: docs/isa.md matches the generator output") {
  const std::string path = std::string(LPU_SOURCE_DIR) + "/docs/isa.md";
  const std::string on_disk = read_text(path);
  const std::string generated = isa_reference_markdown(*default_chip_config());
  INFO("docs/isa.md is out of date: run `build/tools/lpusim isa > docs/isa.md`; first difference at "
       << first_difference(on_disk, generated));
  CHECK(on_disk == generated);
}

TEST_CASE("isadoc: reference covers every opcode, format, class and energy event") {
  const std::string md = isa_reference_markdown(*default_chip_config());
  CHECK(md == isa_reference_markdown(*default_chip_config()));  // deterministic
  for (int i = 0; i < kNumOpcodes; ++i) {
    const OpInfo& oi = op_info(static_cast<Opcode>(i));
    INFO("opcode " << oi.mnemonic);
    char row[32];
    std::snprintf(row, sizeof row, "| 0x%02x | `", i);
    CHECK_THAT(md, Catch::Matchers::Contains(std::string(row) + std::string(oi.mnemonic) + "` |"));
  }
  for (int f = 0; f < kNumFormats; ++f)
    CHECK_THAT(md, Catch::Matchers::Contains("### " + std::string(format_info(static_cast<Format>(f)).name) + "\n"));
  for (int c = 0; c < kNumSchedClasses; ++c)
    CHECK_THAT(md, Catch::Matchers::Contains("| `" + std::string(sched_info(static_cast<SchedClass>(c)).key) + "` |"));
  for (int e = 0; e < kNumEnergyEvents; ++e)
    CHECK_THAT(md, Catch::Matchers::Contains("| `" + std::string(energy_info(static_cast<EnergyEvent>(e)).key) + "` |"));
  // bit ranges of one format, spot-checked against formats.def
  CHECK_THAT(md, Catch::Matchers::Contains("| `addr` | [15:0] | 16 |"));
  CHECK_THAT(md, Catch::Matchers::Contains("| `acc` | [38] | 1 |"));
  CHECK_THAT(md, Catch::Matchers::Contains("| opcode | [63:56] | 8 |"));
  // '|' inside a description is escaped so the table keeps its columns
  CHECK_THAT(md, Catch::Matchers::Contains("dst = \\|a\\|."));
}

TEST_CASE("isadoc: latencies and energies come from the chip config") {
  std::string yaml = default_chip_config_yaml();
  const std::string from = "mxm_abc:       {latency: 24, occupancy: 1}";
  const size_t at = yaml.find(from);
  REQUIRE(at != std::string::npos);
  yaml.replace(at, from.size(), "mxm_abc:       {latency: 77, occupancy: 5}");
  const std::string energy = "sram_read_pj: 320.0";
  const size_t eat = yaml.find(energy);
  REQUIRE(eat != std::string::npos);
  yaml.replace(eat, energy.size(), "sram_read_pj: 321.5");
  const auto cfg = parse_chip_config(yaml, "whatif.yaml");
  const std::string md = isa_reference_markdown(*cfg);
  CHECK_THAT(md, Catch::Matchers::Contains("| `mxm_abc` | MXM plane ABC | 77 | 5 | `abc` |"));
  CHECK_THAT(md, Catch::Matchers::Contains("| FMxm | mxm_abc | row | 77/5 |"));
  CHECK_THAT(md, Catch::Matchers::Contains("| `sram_read_pj` | vector | 321.5 |"));
  CHECK(md != isa_reference_markdown(*default_chip_config()));
}

TEST_CASE("isadoc: lpusim isa prints the reference") {
  const std::string exe = lpusim_exe();
  FILE* p = popen(("'" + exe + "' isa").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  CHECK(status == 0);
  CHECK(out == isa_reference_markdown(*default_chip_config()));
  // a bad --chip is an input error (exit status 2), not a crash
  const std::string bad = std::string(LPU_SOURCE_DIR) + "/tests/data/bad_configs/zero_clock.yaml";
  const int raw = std::system(("'" + exe + "' isa --chip '" + bad + "' >/dev/null 2>&1").c_str());
  CHECK(WIFEXITED(raw));
  CHECK(WEXITSTATUS(raw) == 2);
}
