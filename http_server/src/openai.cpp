#include "openai.h"

#include "inkstream/model_runtime/json_numbers.h"

#include <algorithm>

namespace inkstream::openai {

Json error_body(const ApiError& e) {
  return {{"error",
           {{"message", e.what()},
            {"type", e.type},
            {"param", e.param.empty() ? Json(nullptr) : Json(e.param)},
            {"code", e.code.empty() ? Json(nullptr) : Json(e.code)}}}};
}

ApiError invalid(const std::string& param, const std::string& message) {
  return ApiError(400, param + ": " + message, "invalid_request_error", param);
}

namespace {

// Fields of the API that inkstream does not implement: refused by name
// rather than silently ignored.
const char* const kUnsupported[] = {"echo", "best_of", "suffix", "logprobs", "logit_bias", "presence_penalty", "frequency_penalty"};

double number(const Json& body, const char* key, double fallback, double lo, double hi, bool lo_open = false) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const Json& v = body[key];
  if (!v.is_number()) throw invalid(key, "must be a number");
  const double x = v.get<double>();
  if (!(lo_open ? x > lo : x >= lo) || !(x <= hi))
    throw invalid(key, "must be in " + std::string(lo_open ? "(" : "[") + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

std::int64_t integer(const Json& body, const char* key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const Json& v = body[key];
  if (!v.is_number_integer()) throw invalid(key, "must be an integer");
  const std::optional<std::int64_t> x = json_numbers::integer<std::int64_t>(v, lo, hi);
  if (!x) throw invalid(key, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  return *x;
}

}  // namespace

CompletionRequest parse_completion_request(const Json& body, std::uint64_t random_seed) {
  if (!body.is_object()) throw ApiError(400, "the body must be a JSON object", "invalid_request_error");
  for (const char* key : kUnsupported) {
    if (!body.contains(key) || body[key].is_null()) continue;
    const Json& v = body[key];
    const bool neutral = (v.is_boolean() && !v.get<bool>()) || (v.is_number() && v.get<double>() == 0 && std::string(key) != "best_of") ||
                         (std::string(key) == "best_of" && v.is_number_integer() && v.get<int>() == 1) || (v.is_object() && v.empty());
    if (!neutral) throw invalid(key, "is not supported by inkstream");
  }
  CompletionRequest r;
  if (!body.contains("model") || !body["model"].is_string()) throw invalid("model", "is required (a string)");
  r.model = body["model"].get<std::string>();
  if (!body.contains("prompt")) throw invalid("prompt", "is required");
  const Json& p = body["prompt"];
  if (p.is_string()) {
    r.prompt = p.get<std::string>();
  } else if (p.is_array() && !p.empty() && std::all_of(p.begin(), p.end(), [](const Json& x) { return x.is_number_integer(); })) {
    std::vector<TokenId> ids;
    for (const Json& x : p) {
      const std::optional<TokenId> id = json_numbers::integer<TokenId>(x, 0, 0x7fffffff);
      if (!id) throw invalid("prompt", "token id " + x.dump() + " is not a token id");
      ids.push_back(*id);
    }
    r.prompt = std::move(ids);
  } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
    r.prompt = p[0].get<std::string>();
  } else {
    throw invalid("prompt", "must be a string, a list of token ids, or a list of one string (batches are not supported)");
  }
  GenerationRequest& g = r.generation;
  g.n = static_cast<int>(integer(body, "n", 1, 1, 16));
  g.max_tokens = static_cast<int>(integer(body, "max_tokens", 16, 1, 4096));
  g.sampling.temperature = number(body, "temperature", 1.0, 0, 5);
  g.sampling.top_p = number(body, "top_p", 1.0, 0, 1, /*lo_open=*/true);
  g.sampling.top_k = static_cast<int>(integer(body, "top_k", 0, 0, 1 << 20));
  g.sampling.min_p = number(body, "min_p", 0.0, 0, 1);
  // vLLM's name and llama.cpp's; both multiplicative (1 = off).
  const double rep = number(body, "repetition_penalty", 1.0, 0, 10, true);
  g.sampling.repeat_penalty = body.contains("repeat_penalty") ? number(body, "repeat_penalty", 1.0, 0, 10, true) : rep;
  g.seed = random_seed;
  if (body.contains("seed") && !body["seed"].is_null()) {  // (any uint64: the engine's seeds, and the language server's)
    const auto seed = json_numbers::integer<std::uint64_t>(body["seed"]);
    if (!seed) throw invalid("seed", "must be an integer from 0 to " + std::to_string(UINT64_MAX));
    g.seed = *seed;
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const Json& s = body["stop"];
    if (s.is_string()) {
      g.stop = {s.get<std::string>()};
    } else if (s.is_array() && std::all_of(s.begin(), s.end(), [](const Json& x) { return x.is_string(); })) {
      if (s.size() > 4) throw invalid("stop", "at most 4 stop strings");
      for (const Json& x : s) g.stop.push_back(x.get<std::string>());
    } else {
      throw invalid("stop", "must be a string or a list of strings");
    }
    for (const auto& x : g.stop)
      if (x.empty() || x.size() > 256) throw invalid("stop", "each stop string must have 1 to 256 bytes");
  }
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) throw invalid("stream", "must be a boolean");
    r.stream = body["stream"].get<bool>();
  }
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const Json& so = body["stream_options"];
    if (!so.is_object()) throw invalid("stream_options", "must be an object");
    if (so.contains("include_usage") && !so["include_usage"].is_null()) {
      if (!so["include_usage"].is_boolean()) throw invalid("stream_options.include_usage", "must be a boolean");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  return r;
}

const char* finish_reason(FinishReason r) {
  // Eos and a stop string are both "stop"; a cancelled or failed stream
  // never reaches a finish chunk.
  return r == FinishReason::Length ? "length" : "stop";
}

Json chunk(const std::string& id, std::int64_t created, const std::string& model, int index, const std::string& text,
           const std::optional<FinishReason>& finished) {
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"choices",
           {{{"index", index}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finished ? Json(finish_reason(*finished)) : Json(nullptr)}}}}};
}

Json usage(int prompt_tokens, int completion_tokens, int cached_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", cached_tokens}}}};
}

Json usage_chunk(const std::string& id, std::int64_t created, const std::string& model, const Json& u) {
  return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model}, {"choices", Json::array()}, {"usage", u}};
}

Json completion(const std::string& id, std::int64_t created, const std::string& model, const GenerationResult& result, const Json& u) {
  Json choices = Json::array();
  for (const auto& a : result.alternatives)
    choices.push_back({{"index", a.index}, {"text", a.text}, {"logprobs", nullptr}, {"finish_reason", finish_reason(a.finish_reason)}});
  return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model}, {"choices", choices}, {"usage", u}};
}

// (replace: a byte token that is not valid UTF-8 on its own never fails a stream)
std::string sse(const Json& event) { return "data: " + event.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n"; }

}  // namespace inkstream::openai
