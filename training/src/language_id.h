#pragma once
// Language identification for the optional language filter (CLD2, Debian's
// libcld2: Chromium's compact language detector).
#include <string>
#include <string_view>

namespace inkstream::training {

bool language_id_available();
// ISO 639-1 code of the most likely language ("en"), or "un" when unknown.
std::string detect_language(std::string_view utf8_text);

}  // namespace inkstream::training
