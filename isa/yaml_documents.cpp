#include "isa/yaml_documents.h"

#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

namespace lpu {
namespace {

// Records where each document starts; the events themselves are not needed.
class DocumentStarts : public YAML::EventHandler {
 public:
  YAML::Mark last_start;
  bool started = false;
  void OnDocumentStart(const YAML::Mark& mark) override {
    last_start = mark;
    started = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

YamlDocuments load_yaml_documents(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts h;
  YamlDocuments out;
  bool have_prev = false;
  YAML::Mark prev;
  while (parser.HandleNextDocument(h)) {
    if (have_prev && h.last_start.pos == prev.pos)
      throw YAML::ParserException(h.last_start, "unexpected token here (the parser cannot make progress)");
    prev = h.last_start;
    have_prev = true;
    ++out.count;
  }
  // The stream is well formed as far as the document walk goes: build the first document's node
  // (YAML::Load parses exactly one document and does not loop).
  if (out.count > 0) out.first = YAML::Load(text);
  return out;
}

}  // namespace lpu
