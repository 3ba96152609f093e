#include "wire.h"

#include <stdexcept>

#include "inkstream/model_runtime/json_numbers.h"
#include "inkstream/model_runtime/utf8.h"

namespace inkstream::remote {

using Json = nlohmann::json;

Json completion_body(const WireRequest& r, const DialectTraits& d) {
  Json body = {{"model", r.model}, {"n", r.n}, {"max_tokens", r.max_tokens}, {"temperature", r.sampling.temperature},
               {"seed", d.u64_seeds ? r.seed : r.seed & static_cast<std::uint64_t>(INT64_MAX)}, {"stream", true}};
  if (const auto* text = std::get_if<std::string>(&r.prompt)) body["prompt"] = *text;
  else body["prompt"] = std::get<std::vector<TokenId>>(r.prompt);
  if (r.sampling.top_p < 1.0) body["top_p"] = r.sampling.top_p;
  if (d.top_k[0] && r.sampling.top_k > 0) body[d.top_k] = r.sampling.top_k;
  if (d.min_p[0] && r.sampling.min_p > 0) body[d.min_p] = r.sampling.min_p;
  if (d.repeat_penalty[0] && r.sampling.repeat_penalty != 1.0) body[d.repeat_penalty] = r.sampling.repeat_penalty;
  if (!r.stop.empty()) {
    const std::size_t n = std::min(r.stop.size(), static_cast<std::size_t>(d.max_stop));
    body["stop"] = std::vector<std::string>(r.stop.begin(), r.stop.begin() + static_cast<std::ptrdiff_t>(n));
  }
  if (d.usage) body["stream_options"] = {{"include_usage", true}};
  return body;
}

namespace {

int int_field(const Json& o, const char* key) {
  if (!o.contains(key) || o[key].is_null()) return 0;
  const std::optional<int> n = json_numbers::integer<int>(o[key], 0, 1 << 30);
  if (!n) throw std::invalid_argument(std::string("usage.") + key + " is not a token count");
  return *n;
}

std::string error_message(const Json& e) {
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
  return e.dump();
}

}  // namespace

WireEvent parse_event(std::string_view data) {
  WireEvent ev;
  if (data == "[DONE]") {
    ev.done = true;
    return ev;
  }
  Json j;
  try {
    j = Json::parse(utf8::is_valid(data) ? std::string(data) : utf8::make_valid(data));
  } catch (const Json::exception& e) {
    throw std::invalid_argument(std::string("a streamed event is not JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("a streamed event is not a JSON object");
  if (j.contains("error") && !j["error"].is_null()) {
    ev.error = error_message(j["error"]);
    return ev;
  }
  if (j.contains("choices")) {
    if (!j["choices"].is_array()) throw std::invalid_argument("choices is not a list");
    for (const Json& c : j["choices"]) {
      if (!c.is_object()) throw std::invalid_argument("a choice is not an object");
      WireChoice choice;
      if (c.contains("index")) {
        const std::optional<int> index = json_numbers::integer<int>(c["index"], 0, 1024);
        if (!index) throw std::invalid_argument("a choice's index is not a small integer");
        choice.index = *index;
      }
      if (c.contains("text") && !c["text"].is_null()) {
        if (!c["text"].is_string()) throw std::invalid_argument("a choice's text is not a string");
        choice.text = c["text"].get<std::string>();
      }
      if (c.contains("finish_reason") && c["finish_reason"].is_string()) choice.finish_reason = c["finish_reason"].get<std::string>();
      ev.choices.push_back(std::move(choice));
    }
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const Json& u = j["usage"];
    WireUsage usage;
    usage.prompt_tokens = int_field(u, "prompt_tokens");
    usage.completion_tokens = int_field(u, "completion_tokens");
    if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object())
      usage.cached_tokens = int_field(u["prompt_tokens_details"], "cached_tokens");
    ev.usage = usage;
  }
  return ev;
}

WireError parse_error_body(std::string_view body, int status) {
  WireError e;
  try {
    const Json j = Json::parse(utf8::make_valid(body));
    if (j.is_object() && j.contains("error")) {
      e.message = error_message(j["error"]);
      if (j["error"].is_object() && j["error"].contains("type") && j["error"]["type"].is_string()) e.type = j["error"]["type"];
      if (j.contains("error_type") && j["error_type"].is_string()) e.type = j["error_type"];  // TGI
    } else if (j.is_object() && j.contains("message") && j["message"].is_string()) {
      e.message = j["message"];
    } else if (j.is_object() && j.contains("detail")) {  // FastAPI's default
      e.message = error_message(j["detail"]);
    }
  } catch (const Json::exception&) {
    // plain text (a proxy's HTML page, say): its first line
    std::string text = utf8::make_valid(body.substr(0, 200));
    e.message = text.substr(0, text.find('\n'));
  }
  while (!e.message.empty() && (e.message.back() == '\n' || e.message.back() == ' ')) e.message.pop_back();
  if (e.message.size() > 300) e.message = e.message.substr(0, 300) + "...";
  if (e.message.empty() || e.message.front() == '<') e.message = "HTTP " + std::to_string(status);
  return e;
}

}  // namespace inkstream::remote
