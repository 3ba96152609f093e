#pragma once
// Where the bundled default writing model is, so that `complete` and `lsp`
// work with no model configured.
#include <filesystem>

namespace inkstream::cli {

// The first of: $INKSTREAM_MODEL; <executable>/../share/inkstream/models/default
// (an installed layout); the source tree's models/default (a build). Empty
// when none holds a config.json.
std::filesystem::path default_model_dir();

}  // namespace inkstream::cli
