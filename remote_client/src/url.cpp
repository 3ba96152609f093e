#include "url.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace inkstream::remote {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

bool is_loopback(const std::string& host) {
  const std::string h = lower(host);
  return h == "localhost" || h.ends_with(".localhost") || h.starts_with("127.") || h == "::1";
}

// NO_PROXY: comma-separated hosts, domain suffixes (".example.com" or
// "example.com", both matching sub-domains), "host:port", or "*".
bool no_proxy_matches(const std::string& list, const Url& target) {
  const std::string host = lower(target.host);
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string entry = lower(trim(list.substr(start, end - start)));
    start = end + 1;
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (const std::size_t colon = entry.rfind(':'); colon != std::string::npos && entry.find(':') == colon) {
      if (entry.substr(colon + 1) != std::to_string(target.port)) continue;
      entry = entry.substr(0, colon);
    }
    if (entry.front() == '.') entry.erase(entry.begin());
    if (host == entry || (host.size() > entry.size() && host.ends_with(entry) && host[host.size() - entry.size() - 1] == '.'))
      return true;
  }
  return false;
}

}  // namespace

std::optional<Url> Url::parse(const std::string& text) {
  Url u;
  const std::size_t sep = text.find("://");
  if (sep == std::string::npos) return std::nullopt;
  u.scheme = lower(text.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
  std::string rest = text.substr(sep + 3);
  const std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  if (u.path.find_first_of("?# ") != std::string::npos) return std::nullopt;
  if (const std::size_t at = authority.rfind('@'); at != std::string::npos) {
    const std::string info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const std::size_t colon = info.find(':');
    u.user = info.substr(0, colon);
    if (colon != std::string::npos) u.password = info.substr(colon + 1);
  }
  std::string port;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port = authority.substr(close + 2);
    }
  } else {
    const std::size_t colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  if (port.empty()) {
    u.port = u.scheme == "https" ? 443 : 80;
  } else {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) return std::nullopt;
    u.port = std::stoi(port);
    if (u.port < 1 || u.port > 65535) return std::nullopt;
  }
  return u;
}

std::string Url::origin() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string api_path(const Url& endpoint, const std::string& route) {
  // route is "/v1/..." or "/health"; an endpoint given as ".../v1" already has the /v1.
  if (route.starts_with("/v1/") && endpoint.path.ends_with("/v1")) return endpoint.path + route.substr(3);
  if (!route.starts_with("/v1/") && endpoint.path.ends_with("/v1")) return endpoint.path.substr(0, endpoint.path.size() - 3) + route;
  return endpoint.path + route;
}

std::string read_env(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read-only use
  return v ? v : "";
}

std::optional<Proxy> proxy_for(const Url& target, const EnvReader& env) {
  if (is_loopback(target.host)) return std::nullopt;
  auto get = [&](const std::string& upper) {
    std::string v = env(lower(upper).c_str());
    return v.empty() ? env(upper.c_str()) : v;
  };
  if (no_proxy_matches(get("NO_PROXY"), target)) return std::nullopt;
  std::string value = target.scheme == "https" ? get("HTTPS_PROXY") : get("HTTP_PROXY");
  if (value.empty()) value = get("ALL_PROXY");
  if (value.empty()) return std::nullopt;
  if (value.find("://") == std::string::npos) value = "http://" + value;
  const auto url = Url::parse(value);
  if (!url || url->scheme != "http")
    throw std::invalid_argument(std::string(target.scheme == "https" ? "HTTPS_PROXY" : "HTTP_PROXY") +
                                " is not an http://[user:password@]host:port URL");  // (not echoed: it may hold a password)
  return Proxy{url->host, url->port, url->user, url->password};
}

}  // namespace inkstream::remote
