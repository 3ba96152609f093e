#pragma once
// Completion settings: what a writer or operator configures through
// `initializationOptions` and `workspace/didChangeConfiguration`.
// Every key, its default and meaning is documented in docs/protocol.md.
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "inkstream/completion/remote_config.h"
#include "inkstream/model_runtime/sampler.h"

namespace inkstream {

enum class StopAt { Word, Sentence, Line, Paragraph, None };

struct CompletionSettings {
  std::string model;       // model folder, or a name inside models_dir; "" = the default model
  std::string models_dir;  // where model names are looked up
  // languageId or file glob ("*.tex") -> model name/folder.
  std::vector<std::pair<std::string, std::string>> routing;
  int n = 3;
  int max_tokens = 24;
  SamplingParams sampling{0.8, 40, 0.95, 0.0, 1.1, 64};
  std::uint64_t seed = 42;
  std::vector<std::string> stop;
  StopAt stop_at = StopAt::Sentence;
  int stream_interval_ms = 100;  // streamed updates at most this often (after the first token)
  int stream_every_tokens = 0;   // or after this many new tokens (0 = off)
  int context_chars = 2000;      // text before the cursor considered (then token-fitted)
  std::string device = "auto";
  std::string dtype = "auto";
  int threads = 0;
  int kv_cache_mb = 512;  // per loaded model: cached prompts' keys/values and running requests
  int max_loaded_models = 2;  // models (with their device, dtype and cache settings) kept loaded, least recently used first out
  int prefill_chunk = 256;  // prompt tokens read per engine step, all requests together (smaller: smoother streams for others)
  bool prefix_cache = true;  // reuse the keys/values of earlier prompts (false: a baseline for measurements)
  // Remote clusters by name: a model (or routing target) "remote:NAME" goes
  // there; a model that is a URL is a remote with every default.
  std::map<std::string, RemoteConfig> remotes;

  // Applies the keys present in `patch` on top of this. Each invalid key is
  // reported in `errors` ("n: must be between 1 and 16") and leaves its
  // previous value; unknown keys are reported too.
  void apply(const nlohmann::json& patch, std::vector<std::string>& errors);
  nlohmann::json to_json() const;
  // The model for a document (routing first, then `model`).
  std::string model_for(const std::string& language_id, const std::string& uri) const;
  // The remote a model reference names ("remote:NAME" or a URL), or nullopt
  // (a local model, or an unknown name).
  std::optional<RemoteConfig> remote_for(const std::string& model) const;
  // A stable string of everything that changes generated text (cache key).
  std::string generation_key() const;
};

const char* stop_at_name(StopAt s);

}  // namespace inkstream
