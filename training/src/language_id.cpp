#include "language_id.h"

#if INKSTREAM_WITH_CLD2
#include <cld2/public/compact_lang_det.h>
namespace CLD2 {
const char* LanguageCode(Language lang);  // exported by libcld2; declared in its internal header
}
#endif

#include <climits>

namespace inkstream::training {

#if INKSTREAM_WITH_CLD2
bool language_id_available() { return true; }

std::string detect_language(std::string_view text) {
  bool reliable = false;
  const int n = static_cast<int>(std::min<std::size_t>(text.size(), INT_MAX));
  const CLD2::Language lang = CLD2::DetectLanguage(text.data(), n, /*is_plain_text=*/true, &reliable);
  return CLD2::LanguageCode(lang);
}
#else
bool language_id_available() { return false; }
std::string detect_language(std::string_view) { return "un"; }
#endif

}  // namespace inkstream::training
