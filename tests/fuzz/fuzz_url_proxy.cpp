// Endpoint URLs and the proxy variables: the first line is a URL, the rest
// NAME=VALUE environment lines.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

#include "url.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace inkstream::remote;
  const std::string in(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = in.find('\n');
  const auto url = Url::parse(in.substr(0, nl));
  if (!url) return 0;
  if (url->port < 1 || url->port > 65535 || url->host.empty()) __builtin_trap();
  (void)api_path(*url, "/v1/completions");
  (void)Url::parse(url->origin());
  std::map<std::string, std::string> env;
  for (std::size_t at = nl; at != std::string::npos && at < in.size();) {
    const std::size_t next = in.find('\n', at + 1);
    const std::string line = in.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    if (const std::size_t eq = line.find('='); eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    at = next;
  }
  try {
    const auto proxy = proxy_for(*url, [&](const char* k) { return env.count(k) ? env[k] : std::string(); });
    if (proxy && (proxy->port < 1 || proxy->port > 65535)) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
