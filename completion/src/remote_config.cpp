#include "inkstream/completion/remote_config.h"

#include <stdexcept>

#include "inkstream/model_runtime/json_numbers.h"

namespace inkstream {

using Json = nlohmann::json;

namespace {

const std::map<std::string, Dialect>& dialects() {
  static const std::map<std::string, Dialect> names = {{"openai", Dialect::OpenAI}, {"inkstream", Dialect::Inkstream},
                                                       {"vllm", Dialect::Vllm},     {"llamacpp", Dialect::LlamaCpp},
                                                       {"tgi", Dialect::Tgi},       {"ollama", Dialect::Ollama}};
  return names;
}

struct Invalid : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string get_string(const Json& o, const char* key, const std::string& path) {
  const Json& v = o[key];
  if (!v.is_string()) throw Invalid(path + key + ": must be a string (got " + v.dump() + ")");
  return v.get<std::string>();
}

void get_int(const Json& o, const char* key, int& field, int lo, int hi, const std::string& path) {
  if (!o.contains(key)) return;
  const Json& v = o[key];
  const std::optional<int> n = json_numbers::integer<int>(v, lo, hi);
  if (!n) throw Invalid(path + key + ": " + json_numbers::range_rule(lo, hi) + " (got " + v.dump() + ")");
  field = *n;
}

void check_url(const std::string& url, const std::string& path) {
  if (!url.starts_with("http://") && !url.starts_with("https://"))
    throw Invalid(path + "url: must start with http:// or https:// (got \"" + url + "\")");
  const std::size_t host = url.find("://") + 3;
  if (host >= url.size() || url[host] == '/' || url[host] == ':') throw Invalid(path + "url: has no host (got \"" + url + "\")");
}

RemoteEndpoint parse_endpoint(const Json& v, const std::string& path) {
  RemoteEndpoint e;
  if (v.is_string()) {
    e.url = v.get<std::string>();
    check_url(e.url, path);
    return e;
  }
  if (!v.is_object()) throw Invalid(path.substr(0, path.size() - 1) + ": must be a URL or an object (got " + v.dump() + ")");
  static const std::vector<std::string> known = {"url", "model", "dialect", "api_key_env", "api_key_file", "headers", "ca_file", "insecure"};
  for (const auto& [key, value] : v.items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw Invalid(path + key + (key == "api_key" ? ": put the key in an environment variable (api_key_env) or a file (api_key_file)"
                                                   : ": unknown key"));
  if (!v.contains("url")) throw Invalid(path + "url: is required");
  e.url = get_string(v, "url", path);
  check_url(e.url, path);
  if (v.contains("model")) e.model = get_string(v, "model", path);
  if (v.contains("dialect")) {
    const std::string d = get_string(v, "dialect", path);
    if (!dialects().count(d)) throw Invalid(path + "dialect: must be one of openai, inkstream, vllm, llamacpp, tgi, ollama (got \"" + d + "\")");
    e.dialect = dialects().at(d);
  }
  if (v.contains("api_key_env")) e.api_key_env = get_string(v, "api_key_env", path);
  if (v.contains("api_key_file")) e.api_key_file = get_string(v, "api_key_file", path);
  if (v.contains("ca_file")) e.ca_file = get_string(v, "ca_file", path);
  if (v.contains("insecure")) {
    if (!v["insecure"].is_boolean()) throw Invalid(path + "insecure: must be true or false (got " + v["insecure"].dump() + ")");
    e.insecure = v["insecure"].get<bool>();
  }
  if (v.contains("headers")) {
    const Json& h = v["headers"];
    if (!h.is_object()) throw Invalid(path + "headers: must be an object {name: value} (got " + h.dump() + ")");
    for (const auto& [name, value] : h.items()) {
      if (!value.is_string()) throw Invalid(path + "headers." + name + ": must be a string");
      const std::string s = value.get<std::string>();
      if (name.empty() || name.find_first_of(":\r\n ") != std::string::npos || s.find_first_of("\r\n") != std::string::npos)
        throw Invalid(path + "headers." + name + ": not a valid header");
      e.headers[name] = s;
    }
  }
  return e;
}

}  // namespace

const char* dialect_name(Dialect d) {
  for (const auto& [name, value] : dialects())
    if (value == d) return name.c_str();
  return "openai";
}

DialectTraits dialect_traits(Dialect d) {
  switch (d) {
    case Dialect::Inkstream: return {true, true, true, 4, "top_k", "min_p", "repetition_penalty", true};  // (serve takes 4 stop strings, as OpenAI)
    case Dialect::Vllm: return {true, true, true, 16, "top_k", "min_p", "repetition_penalty", false};
    // llama.cpp streams n only up to its --parallel slots: one request per alternative is safe.
    case Dialect::LlamaCpp: return {true, false, true, 16, "top_k", "min_p", "repeat_penalty", false};
    case Dialect::Tgi: return {false, false, false, 4, "", "", "", false};
    case Dialect::Ollama: return {false, false, true, 4, "", "", "", false};
    case Dialect::OpenAI: break;
  }
  return {false, true, true, 4, "", "", "", false};
}

std::optional<RemoteConfig> RemoteConfig::parse(const Json& v, std::string& error) {
  RemoteConfig c;
  try {
    if (v.is_string()) {
      c.endpoints.push_back(parse_endpoint(v, ""));
      return c;
    }
    if (!v.is_object()) throw Invalid("must be a URL or an object (got " + v.dump() + ")");
    static const std::vector<std::string> known = {"endpoints", "url", "model", "dialect", "api_key_env", "api_key_file", "headers",
                                                   "ca_file", "insecure", "connect_timeout_ms", "first_byte_timeout_ms",
                                                   "token_timeout_ms", "total_timeout_ms", "retries", "breaker_failures",
                                                   "breaker_open_ms", "fallback", "tokenizer", "context_tokens", "api_key"};
    for (const auto& [key, value] : v.items())
      if (std::find(known.begin(), known.end(), key) == known.end()) throw Invalid(key + ": unknown key");
    if (v.contains("endpoints")) {
      if (v.contains("url")) throw Invalid("give either url (one endpoint) or endpoints, not both");
      const Json& list = v["endpoints"];
      if (!list.is_array() || list.empty() || list.size() > 16) throw Invalid("endpoints: must be a list of 1 to 16 endpoints");
      for (std::size_t i = 0; i < list.size(); ++i) c.endpoints.push_back(parse_endpoint(list[i], "endpoints[" + std::to_string(i) + "]."));
    } else {
      // One endpoint written inline: its keys sit beside the timeouts.
      Json one = Json::object();
      for (const char* k : {"url", "model", "dialect", "api_key_env", "api_key_file", "headers", "ca_file", "insecure", "api_key"})
        if (v.contains(k)) one[k] = v[k];
      if (!one.contains("url")) throw Invalid("url: is required (or endpoints: [...])");
      c.endpoints.push_back(parse_endpoint(one, ""));
    }
    get_int(v, "connect_timeout_ms", c.connect_timeout_ms, 1, 600000, "");
    get_int(v, "first_byte_timeout_ms", c.first_byte_timeout_ms, 1, 600000, "");
    get_int(v, "token_timeout_ms", c.token_timeout_ms, 1, 600000, "");
    get_int(v, "total_timeout_ms", c.total_timeout_ms, 1, 3600000, "");
    get_int(v, "retries", c.retries, 0, 5, "");
    get_int(v, "breaker_failures", c.breaker_failures, 1, 1000, "");
    get_int(v, "breaker_open_ms", c.breaker_open_ms, 1, 3600000, "");
    get_int(v, "context_tokens", c.context_tokens, 0, 1 << 20, "");
    if (v.contains("fallback")) c.fallback = get_string(v, "fallback", "");
    if (v.contains("tokenizer")) c.tokenizer = get_string(v, "tokenizer", "");
  } catch (const Invalid& e) {
    error = e.what();
    return std::nullopt;
  }
  return c;
}

Json RemoteConfig::to_json(bool header_values) const {
  Json list = Json::array();
  for (const RemoteEndpoint& e : endpoints) {
    Json headers = Json::object();
    // (a header may hold a secret: status and logs show only its name)
    for (const auto& [name, value] : e.headers) headers[name] = header_values ? value : "(set)";
    Json j = {{"url", e.url}, {"model", e.model}, {"dialect", dialect_name(e.dialect)}, {"headers", headers}};
    // Where the key comes from, never the key.
    if (!e.api_key_env.empty()) j["api_key_env"] = e.api_key_env;
    if (!e.api_key_file.empty()) j["api_key_file"] = e.api_key_file;
    if (!e.ca_file.empty()) j["ca_file"] = e.ca_file;
    if (e.insecure) j["insecure"] = true;
    list.push_back(std::move(j));
  }
  return {{"endpoints", list},
          {"connect_timeout_ms", connect_timeout_ms},
          {"first_byte_timeout_ms", first_byte_timeout_ms},
          {"token_timeout_ms", token_timeout_ms},
          {"total_timeout_ms", total_timeout_ms},
          {"retries", retries},
          {"breaker_failures", breaker_failures},
          {"breaker_open_ms", breaker_open_ms},
          {"fallback", fallback},
          {"tokenizer", tokenizer},
          {"context_tokens", context_tokens}};
}

bool is_remote_model(const std::string& model) {
  return model.starts_with("remote:") || model.starts_with("http://") || model.starts_with("https://");
}

}  // namespace inkstream
