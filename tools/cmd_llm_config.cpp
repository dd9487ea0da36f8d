// `lpusim llm-config FILE`: loads a Hugging Face style config.json (GPT-2, Llama-2/3, Mixtral,
// BERT) with the LLM front end's strict checks and prints the parsed configuration and its
// parameter count (compiler/llm/llm_config.h, docs/llm.md).
#include <iostream>
#include <memory>
#include <string>

#include "compiler/llm/llm_config.h"
#include "tools/commands.h"

namespace lpu::cli {

void register_llm_config(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("llm-config", "Parse an LLM config.json and print its fields and parameter count");
  auto file = std::make_shared<std::string>();
  cmd->add_option("file", *file, "config.json (e.g. workloads/llm/llama-2-7b.json)")->required();
  cmd->callback([file]() { std::cout << llm::load_llm_config(*file).describe(); });
}

}  // namespace lpu::cli
