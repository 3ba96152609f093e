#include "default_model.h"

#include <cstdlib>
#include <system_error>

namespace inkstream::cli {

std::filesystem::path default_model_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto usable = [&](const fs::path& dir) { return !dir.empty() && fs::is_regular_file(dir / "config.json", ec); };
  if (const char* env = std::getenv("INKSTREAM_MODEL"); env && *env) return env;  // explicit: used even if broken (the load says why)
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share/inkstream/models/default";
    if (usable(installed)) return installed;
  }
  const fs::path source = INKSTREAM_DEFAULT_MODEL_DIR;
  if (usable(source)) return source;
  return {};
}

}  // namespace inkstream::cli
