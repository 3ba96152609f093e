#pragma once
// URLs of endpoints and proxies, and which proxy a request takes
// (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as curl reads them: cpp-httplib
// itself reads none of them).
#include <functional>
#include <optional>
#include <string>

namespace inkstream::remote {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  int port = 0;
  std::string path;    // "" or "/prefix" (no trailing slash)
  std::string user, password;  // userinfo (proxies)

  // Parses http(s)://[user:pass@]host[:port][/path]; nullopt if malformed.
  static std::optional<Url> parse(const std::string& text);
  std::string origin() const;  // scheme://host:port
};

// The path of an API route under an endpoint's URL: "/v1/completions" for
// http://h:8000, http://h:8000/v1 and http://h:8000/v1/ alike.
std::string api_path(const Url& endpoint, const std::string& route);

struct Proxy {
  std::string host;
  int port = 0;
  std::string user, password;
};

// Reads an environment variable (lower case first, as curl does); injectable for tests.
using EnvReader = std::function<std::string(const char* name)>;
std::string read_env(const char* name);

// The proxy for a request to `target`, or nullopt (none set, NO_PROXY
// matches, or a loopback host: a local server is never reached through a
// proxy). Throws std::invalid_argument for a malformed proxy variable.
std::optional<Proxy> proxy_for(const Url& target, const EnvReader& env);

}  // namespace inkstream::remote
