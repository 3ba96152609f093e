#include "inkstream/model_runtime/utf8.h"

namespace inkstream::utf8 {
namespace {

// Length of the valid sequence announced by lead byte `b`, or 0 if `b` can
// never start a character (continuation bytes, C0, C1, F5..FF).
int sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Allowed range of the second byte given the lead byte (Unicode Table 3-7);
// this rejects overlongs, surrogates and code points above U+10FFFF early, so
// that each maximal subpart is found exactly.
bool second_byte_ok(unsigned char lead, unsigned char b) {
  switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
  }
}

bool is_continuation(unsigned char b) { return b >= 0x80 && b <= 0xBF; }

}  // namespace

RepairResult repair(std::string_view bytes, bool final) {
  RepairResult r{std::string(), 0};
  r.text.reserve(bytes.size());
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  while (i < n) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) {  // ASCII fast path
      r.text.push_back(static_cast<char>(lead));
      ++i;
      continue;
    }
    const int len = sequence_length(lead);
    if (len == 0) {
      r.text.append(kReplacement);
      ++i;
      continue;
    }
    // Count how many bytes after the lead are valid for this sequence.
    int good = 1;
    while (good < len && i + good < n) {
      const auto b = static_cast<unsigned char>(bytes[i + good]);
      const bool ok = good == 1 ? second_byte_ok(lead, b) : is_continuation(b);
      if (!ok) break;
      ++good;
    }
    if (good == len) {
      r.text.append(bytes.substr(i, len));
      i += len;
    } else if (i + good == n && !final) {
      break;  // incomplete so far: wait for more bytes
    } else {
      r.text.append(kReplacement);  // maximal subpart -> one U+FFFD
      i += good;
    }
  }
  r.consumed = i;
  return r;
}

std::string make_valid(std::string_view bytes) { return repair(bytes, true).text; }

bool is_valid(std::string_view bytes) {
  return repair(bytes, true).text == bytes;
}

void append_code_point(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace inkstream::utf8
