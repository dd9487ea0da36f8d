// Helpers shared by the lpusim subcommands (tools/cli_io.h).
#include "tools/cli_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

namespace lpu::cli {

std::shared_ptr<const ChipConfig> chip_or_default(const std::string& path) {
  return path.empty() ? default_chip_config() : load_chip_config(path);
}

std::string read_text_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError(fmt::format("{}: is a directory, not {}", path, what));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open for reading: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw InputError(fmt::format("{}: read failed", path));
  return ss.str();
}

void write_text_file(const std::string& path, const std::string& text, const std::string& option) {
  const std::string who = option.empty() ? path : option + " " + path;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw InputError(fmt::format("{}: cannot open for writing: {}", who, std::strerror(errno)));
  f << text;
  f.close();
  if (!f) throw InputError(fmt::format("{}: write failed", who));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string find_repo_file(const std::string& rel) {
  std::vector<std::string> cands = {rel};
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (int up = 0; up < 4 && exe.has_parent_path(); ++up) {
      exe = exe.parent_path();
      cands.push_back((exe / rel).string());
    }
#ifdef LPU_SOURCE_DIR
  cands.push_back((std::filesystem::path(LPU_SOURCE_DIR) / rel).string());
#endif
  for (const std::string& c : cands)
    if (std::filesystem::is_regular_file(c, ec)) return c;
  return "";
}

}  // namespace lpu::cli
