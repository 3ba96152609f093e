// `inkstream serve`'s request bodies: any JSON becomes a request or an
// OpenAI-shaped 400 naming the parameter, never a crash or a wrapped number.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

#include "openai.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto body = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (body.is_discarded()) return 0;
  try {
    const auto r = inkstream::openai::parse_completion_request(body, 7);
    if (r.generation.n < 1 || r.generation.n > 16 || r.generation.max_tokens < 1) __builtin_trap();
  } catch (const inkstream::openai::ApiError& e) {
    if (e.status != 400) __builtin_trap();
  }
  return 0;
}
