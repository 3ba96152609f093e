#pragma once
// Stop strings (GenerationRequest::stop) on streamed text, written once for
// every backend: the local engine and the remote client (which applies them
// again where an endpoint takes fewer or ignores them). Torch-free.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace inkstream {

// The earliest position in `text` of a stop string that ends after byte
// `end_after` (the text up to there was checked before: only the last
// stop-length bytes before it are searched again); npos when none. Empty
// stop strings match nothing.
std::size_t find_stop(std::string_view text, const std::vector<std::string>& stops, std::size_t end_after);

// The length of the longest suffix of `text` that is a proper prefix of a
// stop string: text that may still become a stop string, held back from
// streaming until the next tokens decide.
std::size_t stop_prefix_length(std::string_view text, const std::vector<std::string>& stops);

}  // namespace inkstream
