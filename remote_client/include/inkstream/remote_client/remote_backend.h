#pragma once
// Completions from a remote cluster: a CompletionBackend that streams from
// OpenAI-compatible endpoints (our `inkstream serve`, vLLM, SGLang,
// llama.cpp's server, TGI, Ollama), with failover in the configured order,
// retry before the first byte only, a circuit breaker per endpoint, one
// request per alternative where an endpoint cannot stream `n`, and an
// optional local fallback. The context is fitted with a local GPT-2
// tokenizer: no network round trip per keystroke.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "inkstream/completion/backend.h"
#include "inkstream/completion/remote_config.h"

namespace inkstream {

struct RemoteBackendOptions {
  // The tokenizer folder when the config names none (the bundled model's).
  std::filesystem::path default_tokenizer_dir;
  // Loads the local fallback model (called once, the first time every
  // endpoint fails); empty: no fallback.
  std::function<std::unique_ptr<CompletionBackend>()> load_fallback;
  // Environment lookups (API key variables, proxies); empty: the process's.
  std::function<std::string(const char* name)> env;
};

// `name` is how the model is referred to ("remote:cluster" or its URL).
// Throws std::invalid_argument for what can be known wrong before any
// request: a malformed URL or proxy variable, a missing API key or tokenizer.
std::unique_ptr<CompletionBackend> make_remote_backend(const std::string& name, const RemoteConfig& config,
                                                       RemoteBackendOptions options);

}  // namespace inkstream
