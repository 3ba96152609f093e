#pragma once
// Bearer API keys: the request's key against every configured one, in time
// that depends only on the lengths (never on where the bytes differ).
#include <string>
#include <vector>

namespace inkstream {

inline bool same_key(const std::string& expected, const std::string& given) {
  if (expected.empty()) return false;
  unsigned diff = expected.size() == given.size() ? 0u : 1u;
  for (std::size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(expected[i % expected.size()] ^ given[i]);
  return diff == 0;
}

// `authorization`: the request's Authorization header. No keys: open.
inline bool authorized(const std::vector<std::string>& keys, const std::string& authorization) {
  if (keys.empty()) return true;
  if (authorization.rfind("Bearer ", 0) != 0) return false;
  const std::string key = authorization.substr(7);
  bool ok = false;
  for (const auto& k : keys) ok |= same_key(k, key);  // (every key compared)
  return ok;
}

}  // namespace inkstream
