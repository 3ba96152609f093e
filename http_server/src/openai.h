#pragma once
// The OpenAI legacy Completions API as inkstream serves it: requests parsed
// and validated into the runtime's GenerationRequest, responses and
// streamed chunks built. Pure functions (no HTTP): unit-tested.
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "inkstream/model_runtime/generation.h"

namespace inkstream::openai {

using Json = nlohmann::json;

// An error answered as {"error": {message, type, param, code}} with `status`.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string type, std::string param = "", std::string code = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type, param, code;
};
Json error_body(const ApiError& e);
ApiError invalid(const std::string& param, const std::string& message);  // 400 invalid_request_error

struct CompletionRequest {
  std::string model;
  std::variant<std::string, std::vector<TokenId>> prompt;
  GenerationRequest generation;  // prompt ids filled in by the caller (it has the tokenizer)
  bool stream = false;
  bool include_usage = false;
};

// Parses a POST /v1/completions body; throws ApiError (400) naming the
// field. `random_seed` is used when the request gives none.
CompletionRequest parse_completion_request(const Json& body, std::uint64_t random_seed);

// The finish_reason OpenAI clients know: "stop" or "length".
const char* finish_reason(FinishReason r);

Json chunk(const std::string& id, std::int64_t created, const std::string& model, int index, const std::string& text,
           const std::optional<FinishReason>& finished);
Json usage(int prompt_tokens, int completion_tokens, int cached_tokens);
Json usage_chunk(const std::string& id, std::int64_t created, const std::string& model, const Json& usage);
Json completion(const std::string& id, std::int64_t created, const std::string& model, const GenerationResult& result,
                const Json& usage);
// One server-sent event line: "data: <json>\n\n".
std::string sse(const Json& event);

}  // namespace inkstream::openai
