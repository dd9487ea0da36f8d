// Safe reading of a YAML stream that must hold exactly one document.
// yaml-cpp 0.7 (Debian 12) loops forever, allocating, in YAML::LoadAll on some malformed streams,
// e.g. one whose first token is ',' (upstream jbeder/yaml-cpp#1040; fixed after 0.7 by PR #1319).
// This reader walks the stream document by document itself and stops at a document that consumed
// no input, so every input ends in a node or a YAML::Exception, never a hang.
#pragma once
#include <string>

#include <yaml-cpp/yaml.h>

namespace lpu {

struct YamlDocuments {
  YAML::Node first;     // the first document (Null if the stream has none)
  size_t count = 0;     // documents in the stream
};

// Throws YAML::Exception (with a mark) on a syntax error, including the no-progress case above.
YamlDocuments load_yaml_documents(const std::string& text);

}  // namespace lpu
