#pragma once
// A remote cluster as the writer configures it (the `remotes` setting): one
// or more OpenAI-compatible endpoints tried in order, their timeouts, retry,
// circuit breaker and fallback. Parsing and validation only (torch- and
// network-free): remote_client/ does the HTTP. Every key is documented in
// docs/protocol.md ("Remote clusters").
#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace inkstream {

// Which engine an endpoint is: changes only defaults (prompt form, whether
// `n` streams, extra sampling fields, the stop-list size).
enum class Dialect { OpenAI, Inkstream, Vllm, LlamaCpp, Tgi, Ollama };
const char* dialect_name(Dialect d);

struct DialectTraits {
  bool token_prompts;    // accepts a prompt of token ids (exactly the tokens we fitted)
  bool streams_n;        // streams n alternatives interleaved by index (else: one request per alternative)
  bool usage;            // understands stream_options.include_usage
  int max_stop;          // stop strings it accepts
  const char* top_k;     // field names of the extras ("" = not sent)
  const char* min_p;
  const char* repeat_penalty;
  bool u64_seeds;        // takes seeds up to 2^64-1 (else int64, as OpenAI and vLLM: sent modulo 2^63)
};
DialectTraits dialect_traits(Dialect d);

struct RemoteEndpoint {
  std::string url;            // http(s)://host[:port][/prefix], with or without a trailing /v1
  std::string model;          // the `model` field; "" = the first of its GET /v1/models
  Dialect dialect = Dialect::OpenAI;
  std::string api_key_env;    // the API key is read from this environment variable...
  std::string api_key_file;   // ...or this file (first line); never stored in settings, logs or status
  std::map<std::string, std::string> headers;  // extra request headers
  std::string ca_file;        // TLS: trusted CAs (default: the system's)
  bool insecure = false;      // TLS: skip certificate verification (warned about)
};

struct RemoteConfig {
  std::vector<RemoteEndpoint> endpoints;  // tried in order (failover)
  int connect_timeout_ms = 2000;
  int first_byte_timeout_ms = 10000;  // request sent -> first streamed byte
  int token_timeout_ms = 10000;       // between streamed bytes
  int total_timeout_ms = 60000;       // a whole request
  int retries = 1;                    // extra rounds over the endpoints, before the first byte only
  int breaker_failures = 3;           // consecutive failures that open an endpoint's circuit
  int breaker_open_ms = 30000;        // then it is skipped this long, and probed before use
  std::string fallback;               // a local model folder (or "default") used when every endpoint fails
  std::string tokenizer;              // folder with vocab.json + merges.txt ("" = the bundled GPT-2 tokenizer)
  // The remote model's context window; 0 = its max_model_len from GET
  // /v1/models (vLLM's field, also ours), else GPT-2's 1024.
  int context_tokens = 0;

  // Parses a remote: a URL string (one endpoint, every default) or an object.
  // Returns nullopt and sets `error` ("endpoints[0].url: must start with
  // http:// or https://") when anything is invalid.
  static std::optional<RemoteConfig> parse(const nlohmann::json& v, std::string& error);
  // Everything, in the form parse() reads; header values only when asked
  // (they may be secrets: status and logs get their names).
  nlohmann::json to_json(bool header_values = false) const;
};

// A model reference that names a remote: "remote:NAME" (from `remotes`) or a
// URL (one endpoint with every default: the one-setting way).
bool is_remote_model(const std::string& model);

}  // namespace inkstream
