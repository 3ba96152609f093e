#pragma once
// Where the language server's models come from: a local folder through the
// in-process engine, or a remote cluster ("remote:NAME" or a URL) through
// remote_client, with the bundled model as the remote's tokenizer and its
// optional fallback.
#include <filesystem>
#include <memory>

#include "inkstream/completion/service.h"

namespace inkstream::cli {

std::shared_ptr<BackendFactory> make_backends(std::filesystem::path default_model);

}  // namespace inkstream::cli
