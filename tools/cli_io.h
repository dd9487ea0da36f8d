// Small helpers every `lpusim` subcommand shares: the chip to use, whole-file text I/O with
// InputError messages that name the file and the reason, and suffix tests on paths.
#pragma once
#include <memory>
#include <string>

#include "isa/chip_config.h"

namespace lpu::cli {

// The built-in tsp-v1 when `path` is empty, else the validated config loaded from `path`.
std::shared_ptr<const ChipConfig> chip_or_default(const std::string& path);

// Whole file as bytes; InputError "<path>: is a directory, not <what>" / "<path>: cannot open for
// reading: <reason>" / "<path>: read failed".
std::string read_text_file(const std::string& path, const std::string& what);

// Writes (truncates) `path`; InputError "[<option> ]<path>: cannot open for writing: <reason>" /
// "... write failed". `option` names the flag that gave the path (e.g. "--json"), if any.
void write_text_file(const std::string& path, const std::string& text, const std::string& option = "");

bool ends_with(const std::string& s, const std::string& suffix);

// `rel` (a path inside the source tree, e.g. "workloads/llm/gpt2.json") found from the working
// directory, up to 4 levels above the executable, or in the source tree lpusim was built from (for
// a build directory outside it); "" if not found.
std::string find_repo_file(const std::string& rel);

}  // namespace lpu::cli
