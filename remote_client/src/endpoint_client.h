#pragma once
// One endpoint over HTTP (cpp-httplib): its connections (kept alive and
// reused, one request each at a time), its API key, headers, proxy and TLS,
// and the timeouts of a streamed request — connect, first byte, between
// bytes, total — enforced by a watchdog that also closes the stream at once
// when the request is cancelled.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inkstream/completion/remote_config.h"
#include "inkstream/model_runtime/generation.h"
#include "url.h"

namespace httplib {
class Client;
}

namespace inkstream::remote {

// How one HTTP exchange ended.
struct Exchange {
  enum class End {
    Ok,           // 2xx, body read to the end (or the reader stopped it)
    Cancelled,    // our cancellation token
    Unreachable,  // refused, DNS, connect timeout
    Tls,          // handshake or certificate
    NoAnswer,     // nothing within the first-byte timeout
    Stalled,      // bytes, then nothing within the between-bytes timeout
    TimedOut,     // the total budget ran out
    Cut,          // the connection broke after the response began
    Http,         // a non-2xx status (body in `body`)
  };
  End end = End::Ok;
  int status = 0;
  std::string body;         // non-2xx: the error body (bounded); GET: the body
  std::string detail;       // cpp-httplib's error name, for logs
  int retry_after_ms = -1;  // Retry-After / retry-after-ms of a 429 or 503
  bool headers_seen = false;
};

class EndpointClient {
 public:
  // Throws std::invalid_argument for a bad URL or proxy variable, a missing
  // or unreadable API key.
  EndpointClient(const RemoteEndpoint& endpoint, const RemoteConfig& config, const EnvReader& env);
  ~EndpointClient();

  const std::string& url() const { return endpoint_.url; }
  const RemoteEndpoint& endpoint() const { return endpoint_; }

  // POSTs `body` (JSON) to `route` and hands each received chunk of the
  // response body to `on_bytes` (returning false ends the exchange: Ok).
  Exchange post_stream(const std::string& route, const std::string& body, const std::function<bool(std::string_view)>& on_bytes,
                       const CancellationToken* cancel);
  // A short GET (probes, /v1/models) with the connect timeout and
  // `timeout` for the answer.
  Exchange get(const std::string& route, std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<httplib::Client> take();  // a kept-alive connection, or a new one
  std::unique_ptr<httplib::Client> make_client() const;
  void give_back(std::unique_ptr<httplib::Client> c);

  RemoteEndpoint endpoint_;
  Url url_;
  std::optional<Proxy> proxy_;
  std::string api_key_;
  std::chrono::milliseconds connect_, first_byte_, between_, total_;
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;  // kept-alive connections
};

}  // namespace inkstream::remote
