#pragma once
// The OpenAI legacy Completions API as engines speak it: the request body
// for a dialect, one streamed event, an error body (OpenAI's nested object
// with a string or int code, TGI's flat one, plain text).
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "inkstream/completion/remote_config.h"
#include "inkstream/model_runtime/sampler.h"

namespace inkstream::remote {

struct WireRequest {
  std::string model;
  std::variant<std::string, std::vector<TokenId>> prompt;
  int n = 1;
  int max_tokens = 16;
  SamplingParams sampling;
  std::uint64_t seed = 0;
  std::vector<std::string> stop;  // cut to the dialect's limit
};
nlohmann::json completion_body(const WireRequest& r, const DialectTraits& dialect);

struct WireChoice {
  int index = 0;
  std::string text;           // a delta
  std::string finish_reason;  // "" while it goes on
};
struct WireUsage {
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
struct WireEvent {
  bool done = false;  // [DONE]
  std::vector<WireChoice> choices;
  std::optional<WireUsage> usage;
  std::optional<std::string> error;  // an error event inside the stream
};
// One event's data. Invalid UTF-8 is repaired first (a server that split a
// character between tokens); throws std::invalid_argument when it is not a
// completion chunk.
WireEvent parse_event(std::string_view data);

struct WireError {
  std::string message;  // never empty
  std::string type;     // "overloaded", "invalid_request_error"... or ""
};
WireError parse_error_body(std::string_view body, int status);

}  // namespace inkstream::remote
