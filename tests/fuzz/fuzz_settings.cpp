// The language server's settings (initializationOptions and
// didChangeConfiguration), remotes included: any JSON is applied or
// refused with messages, and a refused key keeps its previous value.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

#include "inkstream/completion/settings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto patch = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (patch.is_discarded()) return 0;
  inkstream::CompletionSettings s;
  std::vector<std::string> errors;
  s.apply(patch, errors);
  const nlohmann::json first = s.to_json();
  // Applying what to_json shows is accepted as it is (nothing shown is invalid).
  nlohmann::json shown = first;
  shown.erase("remotes");  // (header values are shown as "(set)")
  inkstream::CompletionSettings again;
  std::vector<std::string> errors2;
  again.apply(shown, errors2);
  if (!errors2.empty()) __builtin_trap();
  for (const auto& [name, remote] : s.remotes) {
    (void)s.remote_for("remote:" + name);
    std::string error;
    if (!inkstream::RemoteConfig::parse(remote.to_json(true), error)) __builtin_trap();  // a parsed remote round-trips
  }
  (void)s.model_for("markdown", "file:///a/b.tex");
  (void)s.generation_key();
  return 0;
}
