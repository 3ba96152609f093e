#include "inkstream/completion/settings.h"

#include <fnmatch.h>

#include "inkstream/model_runtime/json_numbers.h"

namespace inkstream {

using Json = nlohmann::json;

const char* stop_at_name(StopAt s) {
  switch (s) {
    case StopAt::Word: return "word";
    case StopAt::Sentence: return "sentence";
    case StopAt::Line: return "line";
    case StopAt::Paragraph: return "paragraph";
    case StopAt::None: return "none";
  }
  return "none";
}

namespace {

// Reads one key with a type and range check; records an error instead of
// changing the value when the new value is unusable.
template <typename T, typename Check>
void take(const Json& patch, const char* key, T& field, Check ok, const char* rule, std::vector<std::string>& errors) {
  if (!patch.contains(key)) return;
  const Json& v = patch[key];
  try {
    T value{};
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) throw std::invalid_argument("not a boolean");
      value = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      // Range-checked as the JSON number: 4294967297 is not 1, -1 is not 2^64-1.
      const std::optional<T> n = json_numbers::integer<T>(v);
      if (!n) throw std::invalid_argument("not an integer in range");
      value = *n;
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) throw std::invalid_argument("not a number");
      value = v.get<T>();
    } else {
      value = v.get<T>();
    }
    if (!ok(value)) throw std::invalid_argument(rule);
    field = value;
  } catch (const std::exception&) {
    errors.push_back(std::string(key) + ": " + rule + " (got " + v.dump() + ")");
  }
}

}  // namespace

void CompletionSettings::apply(const Json& patch, std::vector<std::string>& errors) {
  if (!patch.is_object()) {
    errors.push_back("settings must be a JSON object");
    return;
  }
  static const std::vector<std::string> known = {
      "model", "models_dir", "routing", "n", "max_tokens", "temperature", "top_k", "top_p", "min_p", "repeat_penalty",
      "repeat_last_n", "seed", "stop", "stop_at", "stream_interval_ms", "stream_every_tokens", "context_chars", "device",
      "dtype", "threads", "kv_cache_mb", "prefix_cache", "max_loaded_models", "prefill_chunk", "streaming", "remotes"};
  for (const auto& [key, value] : patch.items())
    if (std::find(known.begin(), known.end(), key) == known.end()) errors.push_back(key + ": unknown setting");
  auto any = [](const auto&) { return true; };
  take(patch, "model", model, any, "must be a string", errors);
  take(patch, "models_dir", models_dir, any, "must be a string", errors);
  take(patch, "n", n, [](int v) { return v >= 1 && v <= 16; }, "must be an integer from 1 to 16", errors);
  take(patch, "max_tokens", max_tokens, [](int v) { return v >= 1 && v <= 512; }, "must be an integer from 1 to 512", errors);
  take(patch, "temperature", sampling.temperature, [](double v) { return v >= 0 && v <= 5; }, "must be a number from 0 to 5", errors);
  take(patch, "top_k", sampling.top_k, [](int v) { return v >= 0; }, "must be an integer >= 0 (0 = off)", errors);
  take(patch, "top_p", sampling.top_p, [](double v) { return v > 0 && v <= 1; }, "must be a number in (0, 1]", errors);
  take(patch, "min_p", sampling.min_p, [](double v) { return v >= 0 && v <= 1; }, "must be a number in [0, 1]", errors);
  take(patch, "repeat_penalty", sampling.repeat_penalty, [](double v) { return v > 0 && v <= 10; }, "must be a number in (0, 10]", errors);
  take(patch, "repeat_last_n", sampling.repeat_last_n, [](int v) { return v >= -1; }, "must be an integer >= -1", errors);
  take(patch, "seed", seed, any, "must be a non-negative integer", errors);
  take(patch, "stop", stop, [](const std::vector<std::string>& v) {
    return v.size() <= 16 && std::all_of(v.begin(), v.end(), [](const std::string& s) { return !s.empty() && s.size() <= 256; });
  }, "must be a list of up to 16 non-empty strings", errors);
  if (patch.contains("stop_at")) {
    const Json& v = patch["stop_at"];
    static const std::map<std::string, StopAt> names = {{"word", StopAt::Word}, {"sentence", StopAt::Sentence}, {"line", StopAt::Line},
                                                        {"paragraph", StopAt::Paragraph}, {"none", StopAt::None}};
    if (v.is_string() && names.count(v.get<std::string>())) {
      stop_at = names.at(v.get<std::string>());
    } else {
      errors.push_back("stop_at: must be one of word, sentence, line, paragraph, none (got " + v.dump() + ")");
    }
  }
  take(patch, "stream_interval_ms", stream_interval_ms, [](int v) { return v >= 0 && v <= 10000; }, "must be an integer from 0 to 10000", errors);
  take(patch, "stream_every_tokens", stream_every_tokens, [](int v) { return v >= 0; }, "must be an integer >= 0", errors);
  take(patch, "context_chars", context_chars, [](int v) { return v >= 1 && v <= 100000; }, "must be an integer from 1 to 100000", errors);
  take(patch, "device", device, [](const std::string& v) { return v == "auto" || v == "cpu" || v.starts_with("cuda"); },
       "must be auto, cpu, cuda or cuda:N", errors);
  take(patch, "dtype", dtype, [](const std::string& v) { return v == "auto" || v == "fp32" || v == "bf16" || v == "fp16" || v == "int8"; },
       "must be auto, fp32, bf16, fp16 or int8", errors);
  take(patch, "kv_cache_mb", kv_cache_mb, [](int v) { return v >= 1 && v <= 1048576; }, "must be an integer from 1 to 1048576", errors);
  take(patch, "max_loaded_models", max_loaded_models, [](int v) { return v >= 1 && v <= 64; }, "must be an integer from 1 to 64", errors);
  take(patch, "prefill_chunk", prefill_chunk, [](int v) { return v >= 1 && v <= 8192; }, "must be an integer from 1 to 8192", errors);
  take(patch, "prefix_cache", prefix_cache, any, "must be true or false", errors);
  take(patch, "threads", threads, [](int v) { return v >= 0 && v <= 1024; }, "must be an integer >= 0 (0 = physical cores)", errors);
  if (patch.contains("remotes")) {
    const Json& v = patch["remotes"];
    std::map<std::string, RemoteConfig> parsed;
    std::string error;
    if (!v.is_object()) error = "remotes: must be an object {name: URL or {url, ...}} (got " + v.dump() + ")";
    else
      for (const auto& [name, config] : v.items()) {
        std::string why;
        if (name.empty()) why = "remotes: a remote needs a name";
        else if (auto c = RemoteConfig::parse(config, why)) parsed.emplace(name, std::move(*c));
        else why = "remotes." + name + ": " + why;
        if (!why.empty() && error.empty()) error = why;
      }
    if (error.empty()) remotes = std::move(parsed);
    else errors.push_back(error);
  }
  if (patch.contains("routing")) {
    const Json& v = patch["routing"];
    std::vector<std::pair<std::string, std::string>> parsed;
    bool ok = v.is_object();
    if (ok)
      for (const auto& [k, m] : v.items()) {
        if (!m.is_string()) ok = false;
        else parsed.emplace_back(k, m.get<std::string>());
      }
    if (ok) routing = std::move(parsed);
    else errors.push_back("routing: must be an object {languageId or glob: model} (got " + v.dump() + ")");
  }
}

Json CompletionSettings::to_json() const {
  Json r = Json::object();
  for (const auto& [k, m] : routing) r[k] = m;
  Json remote_list = Json::object();
  for (const auto& [name, c] : remotes) remote_list[name] = c.to_json();
  return {{"model", model},
          {"models_dir", models_dir},
          {"routing", r},
          {"n", n},
          {"max_tokens", max_tokens},
          {"temperature", sampling.temperature},
          {"top_k", sampling.top_k},
          {"top_p", sampling.top_p},
          {"min_p", sampling.min_p},
          {"repeat_penalty", sampling.repeat_penalty},
          {"repeat_last_n", sampling.repeat_last_n},
          {"seed", seed},
          {"stop", stop},
          {"stop_at", stop_at_name(stop_at)},
          {"stream_interval_ms", stream_interval_ms},
          {"stream_every_tokens", stream_every_tokens},
          {"context_chars", context_chars},
          {"device", device},
          {"dtype", dtype},
          {"threads", threads},
          {"kv_cache_mb", kv_cache_mb},
          {"prefix_cache", prefix_cache},
          {"max_loaded_models", max_loaded_models},
          {"prefill_chunk", prefill_chunk},
          {"remotes", remote_list}};
}

std::optional<RemoteConfig> CompletionSettings::remote_for(const std::string& model) const {
  if (model.starts_with("remote:")) {
    const auto it = remotes.find(model.substr(7));
    if (it == remotes.end()) return std::nullopt;
    return it->second;
  }
  if (model.starts_with("http://") || model.starts_with("https://")) {
    std::string error;
    return RemoteConfig::parse(model, error);
  }
  return std::nullopt;
}

std::string CompletionSettings::model_for(const std::string& language_id, const std::string& uri) const {
  for (const auto& [pattern, m] : routing) {
    if (pattern == language_id) return m;
    const std::string file = uri.substr(uri.find_last_of('/') + 1);
    if (fnmatch(pattern.c_str(), file.c_str(), 0) == 0) return m;
  }
  return model;
}

std::string CompletionSettings::generation_key() const {
  Json j = to_json();
  for (const char* k : {"routing", "stream_interval_ms", "stream_every_tokens", "device", "threads", "kv_cache_mb", "prefix_cache", "max_loaded_models", "prefill_chunk", "models_dir",
                        "model"})
    j.erase(k);
  return j.dump();
}

}  // namespace inkstream
