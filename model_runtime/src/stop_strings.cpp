#include "inkstream/model_runtime/stop_strings.h"

#include <algorithm>

namespace inkstream {

std::size_t find_stop(std::string_view text, const std::vector<std::string>& stops, std::size_t end_after) {
  std::size_t best = std::string_view::npos;
  for (const auto& s : stops) {
    if (s.empty()) continue;
    // An occurrence at or after `start` ends after `end_after`.
    const std::size_t start = end_after >= s.size() ? end_after - s.size() + 1 : 0;
    best = std::min(best, text.find(s, start));
  }
  return best;
}

std::size_t stop_prefix_length(std::string_view text, const std::vector<std::string>& stops) {
  std::size_t best = 0;
  for (const auto& s : stops)
    for (std::size_t len = std::min(s.empty() ? 0 : s.size() - 1, text.size()); len > best; --len)
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        best = len;
        break;
      }
  return best;
}

}  // namespace inkstream
