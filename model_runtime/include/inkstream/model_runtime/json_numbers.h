#pragma once
// One rule for every integer that arrives as JSON — settings, LSP params,
// config.json, safetensors headers, request bodies, remote responses: it is
// range-checked as the JSON number it is (nlohmann keeps int64 or uint64)
// before any conversion, so 4294967297 never becomes 1 and -1 never becomes
// 18446744073709551615. Header-only (any library with nlohmann_json).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

namespace inkstream::json_numbers {

// The value of `v` as a T when it is an integer JSON number within [lo, hi];
// nullopt for anything else (a float, a string, a number out of range).
template <class T>
std::optional<T> integer(const nlohmann::json& v, T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  if (v.is_number_unsigned()) {
    const std::uint64_t u = v.get<std::uint64_t>();
    if (hi < 0 || u > static_cast<std::uint64_t>(hi)) return std::nullopt;
    const T t = static_cast<T>(u);
    if (t < lo) return std::nullopt;
    return t;
  }
  if (v.is_number_integer()) {
    const std::int64_t s = v.get<std::int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (s < 0 || static_cast<std::uint64_t>(s) < static_cast<std::uint64_t>(lo) || static_cast<std::uint64_t>(s) > static_cast<std::uint64_t>(hi))
        return std::nullopt;
    } else {
      if (s < static_cast<std::int64_t>(lo) || s > static_cast<std::int64_t>(hi)) return std::nullopt;
    }
    return static_cast<T>(s);
  }
  return std::nullopt;
}

// "an integer from LO to HI": the rule, for error messages.
template <class T>
std::string range_rule(T lo, T hi) {
  return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

}  // namespace inkstream::json_numbers
