#include "endpoint_client.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace inkstream::remote {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxErrorBody = 64 << 10;
constexpr std::size_t kMaxIdleConnections = 8;

std::string read_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("the API key file " + path + " cannot be read");
  std::string key;
  std::getline(in, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) throw std::invalid_argument("the API key file " + path + " is empty");
  return key;
}

int retry_after_ms(const httplib::Response& res) {
  try {
    if (res.has_header("retry-after-ms")) return std::max(0, std::stoi(res.get_header_value("retry-after-ms")));
    if (res.has_header("Retry-After")) return std::max(0, std::stoi(res.get_header_value("Retry-After"))) * 1000;
  } catch (const std::exception&) {  // an HTTP date, or junk: no hint
  }
  return -1;
}

bool is_tls_error(httplib::Error e) {
  return e == httplib::Error::SSLConnection || e == httplib::Error::SSLLoadingCerts || e == httplib::Error::SSLServerVerification;
}

}  // namespace

EndpointClient::EndpointClient(const RemoteEndpoint& endpoint, const RemoteConfig& config, const EnvReader& env)
    : endpoint_(endpoint),
      connect_(config.connect_timeout_ms),
      first_byte_(config.first_byte_timeout_ms),
      between_(config.token_timeout_ms),
      total_(config.total_timeout_ms) {
  const auto url = Url::parse(endpoint.url);
  if (!url) throw std::invalid_argument("the endpoint URL " + endpoint.url + " is not an http(s)://host[:port][/path] URL");
  url_ = *url;
  proxy_ = proxy_for(url_, env);
  if (!endpoint.api_key_env.empty()) {
    api_key_ = env(endpoint.api_key_env.c_str());
    if (api_key_.empty()) throw std::invalid_argument("the API key variable " + endpoint.api_key_env + " is not set");
  } else if (!endpoint.api_key_file.empty()) {
    api_key_ = read_key_file(endpoint.api_key_file);
  }
  if (endpoint.insecure && url_.scheme == "https")
    spdlog::warn("remote: TLS certificates of {} are NOT verified (insecure: true): use it for testing only", endpoint.url);
}

EndpointClient::~EndpointClient() = default;

std::unique_ptr<httplib::Client> EndpointClient::take() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  return make_client();
}

std::unique_ptr<httplib::Client> EndpointClient::make_client() const {
  auto c = std::make_unique<httplib::Client>(url_.origin());
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(connect_));
  // A backstop only: the watchdog enforces the first-byte and between-bytes limits.
  c->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(std::max(first_byte_, between_) + std::chrono::seconds(1)));
  c->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(std::max(connect_, std::chrono::milliseconds(5000))));
  if (proxy_) {
    c->set_proxy(proxy_->host, proxy_->port);
    if (!proxy_->user.empty()) c->set_proxy_basic_auth(proxy_->user, proxy_->password);
  }
  if (url_.scheme == "https") {
    c->enable_server_certificate_verification(!endpoint_.insecure);
    if (!endpoint_.ca_file.empty()) c->set_ca_cert_path(endpoint_.ca_file);
  }
  httplib::Headers headers;
  for (const auto& [name, value] : endpoint_.headers) headers.emplace(name, value);
  c->set_default_headers(headers);
  if (!api_key_.empty()) c->set_bearer_token_auth(api_key_);
  return c;
}

void EndpointClient::give_back(std::unique_ptr<httplib::Client> c) {
  std::lock_guard lock(pool_mutex_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
}

Exchange EndpointClient::post_stream(const std::string& route, const std::string& body,
                                     const std::function<bool(std::string_view)>& on_bytes, const CancellationToken* cancel) {
  auto client = take();
  Exchange ex;
  const auto start = Clock::now();
  std::atomic<bool> headers{false};
  std::atomic<Clock::rep> last_byte{start.time_since_epoch().count()};
  bool stopped_by_reader = false;

  // The watchdog: closes the socket (httplib's stop(), the one thread-safe
  // call) when the request is cancelled or a time limit passes.
  enum Why { None, ByCancel, ByNoAnswer, ByStall, ByTotal };
  std::atomic<int> why{None};
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    while (!cv.wait_for(lock, std::chrono::milliseconds(5), [&] { return finished; })) {
      const auto now = Clock::now();
      int reason = None;
      if (cancel && cancel->cancelled()) reason = ByCancel;
      else if (now - start > total_) reason = ByTotal;
      else if (!headers && now - start > connect_ + first_byte_) reason = ByNoAnswer;
      else if (headers && now - Clock::time_point(Clock::duration(last_byte.load())) > between_) reason = ByStall;
      if (reason != None) {
        why = reason;
        client->stop();
        return;
      }
    }
  });

  httplib::Request req;
  req.method = "POST";
  req.path = api_path(url_, route);
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  req.response_handler = [&](const httplib::Response& res) {
    ex.status = res.status;
    ex.retry_after_ms = retry_after_ms(res);
    last_byte = Clock::now().time_since_epoch().count();
    headers = true;
    return true;
  };
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    last_byte = Clock::now().time_since_epoch().count();
    if (ex.status / 100 != 2) {
      if (ex.body.size() < kMaxErrorBody) ex.body.append(data, std::min(n, kMaxErrorBody - ex.body.size()));
      return true;
    }
    if (!on_bytes(std::string_view(data, n))) {
      stopped_by_reader = true;
      return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool ok = client->send(req, res, err);
  {
    std::lock_guard lock(m);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();

  ex.headers_seen = headers;
  ex.detail = httplib::to_string(err);
  const bool completed = ok || (err == httplib::Error::Canceled && stopped_by_reader);
  if (why == ByCancel) {
    ex.end = Exchange::End::Cancelled;
    return ex;
  }
  if (completed) {  // (even if a limit passed in the moment after the exchange ended)
    ex.end = ex.status / 100 == 2 ? Exchange::End::Ok : Exchange::End::Http;
    // A stream the reader stopped leaves unread bytes, and one the watchdog
    // touched may be shut: those connections are not reused.
    if (ok && why == None) give_back(std::move(client));
    return ex;
  }
  switch (why.load()) {
    case ByNoAnswer: ex.end = Exchange::End::NoAnswer; return ex;
    case ByStall: ex.end = Exchange::End::Stalled; return ex;
    case ByTotal: ex.end = Exchange::End::TimedOut; return ex;
    default: break;
  }
  if (is_tls_error(err)) ex.end = Exchange::End::Tls;
  else if (ex.headers_seen) ex.end = ex.status / 100 == 2 ? Exchange::End::Cut : Exchange::End::Http;
  else ex.end = Exchange::End::Unreachable;
  return ex;
}

Exchange EndpointClient::get(const std::string& route, std::chrono::milliseconds timeout) {
  auto client = make_client();  // (its own read timeout: not one of the streams' pooled connections)
  client->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  Exchange ex;
  const auto res = client->Get(api_path(url_, route).c_str());
  ex.detail = httplib::to_string(res.error());
  if (!res) {
    ex.end = is_tls_error(res.error()) ? Exchange::End::Tls
             : res.error() == httplib::Error::Read ? Exchange::End::NoAnswer
                                                   : Exchange::End::Unreachable;
    return ex;
  }
  ex.headers_seen = true;
  ex.status = res->status;
  ex.body = res->body.substr(0, kMaxErrorBody);
  ex.retry_after_ms = retry_after_ms(*res);
  ex.end = res->status / 100 == 2 ? Exchange::End::Ok : Exchange::End::Http;
  return ex;
}

}  // namespace inkstream::remote
