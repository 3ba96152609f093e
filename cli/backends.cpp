#include "backends.h"

#include <stdexcept>

#include "inkstream/completion/local_backend.h"
#include "inkstream/remote_client/remote_backend.h"

namespace inkstream::cli {
namespace {

class Backends final : public BackendFactory {
 public:
  explicit Backends(std::filesystem::path default_model) : default_model_(std::move(default_model)) {}

  std::unique_ptr<CompletionBackend> load(const ModelSpec& spec) override {
    if (!is_remote_model(spec.dir)) return local_->load(spec);
    if (spec.remote.empty())
      throw std::invalid_argument("there is no remote named '" + spec.dir.substr(7) + "' in the remotes setting");
    std::string error;
    const auto config = RemoteConfig::parse(nlohmann::json::parse(spec.remote), error);
    if (!config) throw std::invalid_argument(error);
    RemoteBackendOptions options;
    options.default_tokenizer_dir = default_model_;  // every GPT-2-family model shares its tokenizer
    if (!config->fallback.empty()) {
      ModelSpec local = spec;
      local.remote.clear();
      local.dir = config->fallback == "default" ? default_model_.string() : config->fallback;
      if (local.dir.empty()) throw std::invalid_argument("fallback \"default\": there is no bundled model");
      options.load_fallback = [factory = local_, local] { return factory->load(local); };
    }
    return make_remote_backend(spec.dir, *config, std::move(options));
  }

 private:
  std::filesystem::path default_model_;
  std::shared_ptr<LocalBackendFactory> local_ = std::make_shared<LocalBackendFactory>();
};

}  // namespace

std::shared_ptr<BackendFactory> make_backends(std::filesystem::path default_model) {
  return std::make_shared<Backends>(std::move(default_model));
}

}  // namespace inkstream::cli
