// Citations of documentation sections stay valid: code and docs cite a section as
// docs/NAME.md followed by the quoted title of a heading or bold paragraph lead in that page
// (docs/compiler.md's parts live in docs/compiler/*.md, docs/compiler.md "Parts"). A citation
// may be cut by a line break, so its text up to the end of the line must begin some title.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Headings (`# ...`) and bold leads of one markdown page: the text after each `**` to the end of
// its line (a lead may close on a later line; titles are matched by prefix).
void add_titles(const fs::path& p, std::vector<std::string>* out) {
  static const std::regex heading(R"(^#+\s+(.*)$)");
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, heading)) out->push_back(m[1]);
    for (size_t at = line.find("**"); at != std::string::npos; at = line.find("**", at + 2))
      out->push_back(line.substr(at + 2));
  }
}

}  // namespace

TEST_CASE("doc refs: every docs/NAME.md \"Title\" citation names an existing heading or bold lead") {
  const fs::path root = LPU_SOURCE_DIR;
  std::map<std::string, std::vector<std::string>> titles;  // doc name -> titles
  auto titles_of = [&](const std::string& name) -> const std::vector<std::string>* {
    auto it = titles.find(name);
    if (it != titles.end()) return &it->second;
    const fs::path page = root / "docs" / (name + ".md");
    if (!fs::exists(page)) return nullptr;
    std::vector<std::string>& t = titles[name];
    add_titles(page, &t);
    const fs::path parts = root / "docs" / name;  // a page's parts (docs/compiler/*.md)
    if (fs::is_directory(parts))
      for (const auto& e : fs::directory_iterator(parts))
        if (e.path().extension() == ".md") add_titles(e.path(), &t);
    return &t;
  };
  static const std::regex cite(R"re(docs/([a-z_-]+)\.md "([^"]*))re");
  const std::vector<std::string> exts{".cpp", ".h", ".md", ".py", ".sh", ".def", ".txt", ".yaml"};
  std::vector<fs::path> files;
  for (const char* dir : {"compiler", "sim", "system", "tools", "tests", "bench", "isa", "sweep", "docs", "scripts",
                          "fuzz", "workloads"}) {
    if (!fs::is_directory(root / dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / dir))
      if (e.is_regular_file() && std::find(exts.begin(), exts.end(), e.path().extension().string()) != exts.end())
        files.push_back(e.path());
  }
  files.push_back(root / "README.md");
  std::sort(files.begin(), files.end());
  int citations = 0;
  for (const fs::path& f : files) {
    std::istringstream in(slurp(f));
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      for (std::sregex_iterator it(line.begin(), line.end(), cite), end; it != end; ++it) {
        std::string title = (*it)[2];
        while (!title.empty() && (title.back() == ' ' || title.back() == '\\')) title.pop_back();
        if (title.empty()) continue;
        ++citations;
        const std::vector<std::string>* t = titles_of((*it)[1]);
        INFO(fs::relative(f, root).string() << ":" << line_no << " cites docs/" << (*it)[1] << ".md \"" << title << "\"");
        REQUIRE(t != nullptr);
        const bool found = std::any_of(t->begin(), t->end(), [&](const std::string& s) { return s.rfind(title, 0) == 0; });
        CHECK(found);
      }
    }
  }
  CHECK(citations > 50);  // the scan found the tree's citations (about 80 when written)
}
