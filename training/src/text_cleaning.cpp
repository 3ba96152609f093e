#include "inkstream/training/text_cleaning.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <vector>

#include "inkstream/model_runtime/utf8.h"

namespace inkstream::training {
namespace {

// Code points of valid UTF-8.
std::u32string code_points(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  std::int32_t i = 0;
  const auto n = static_cast<std::int32_t>(text.size());
  const auto* s = reinterpret_cast<const std::uint8_t*>(text.data());
  while (i < n) {
    UChar32 c;
    U8_NEXT(s, i, n, c);
    out.push_back(c < 0 ? U'\uFFFD' : static_cast<char32_t>(c));
  }
  return out;
}

std::string to_utf8(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) utf8::append_code_point(out, c);
  return out;
}

// Windows-1252 bytes 0x80-0x9F; the five bytes it leaves undefined decode
// to the C1 control of the same value (as Windows and ftfy's
// "sloppy-windows-1252" do), so every byte 0x80-0xFF has a character.
constexpr std::array<char32_t, 32> kCp1252High = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

// The byte a character came from when UTF-8 was misread as Windows-1252 or
// Latin-1 (both: C1 controls are Latin-1's reading of 0x80-0x9F).
std::optional<std::uint8_t> misread_byte(char32_t c) {
  if (c >= 0x80 && c <= 0xFF) return static_cast<std::uint8_t>(c);
  for (std::size_t i = 0; i < kCp1252High.size(); ++i)
    if (kCp1252High[i] == c) return static_cast<std::uint8_t>(0x80 + i);
  return std::nullopt;
}

// One pass: at each position whose characters re-encode to a well-formed
// multi-byte UTF-8 sequence, put the character that sequence encodes.
std::u32string repair_once(const std::u32string& in, std::size_t& repaired) {
  std::u32string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size();) {
    const auto lead = misread_byte(in[i]);
    int len = 0;
    if (lead) len = *lead >= 0xF0 && *lead <= 0xF4 ? 4 : *lead >= 0xE0 && *lead <= 0xEF ? 3 : *lead >= 0xC2 && *lead <= 0xDF ? 2 : 0;
    if (len > 0 && i + static_cast<std::size_t>(len) <= in.size()) {
      std::array<std::uint8_t, 4> bytes{*lead, 0, 0, 0};
      bool ok = true;
      for (int k = 1; k < len && ok; ++k) {
        const auto b = misread_byte(in[i + static_cast<std::size_t>(k)]);
        ok = b && (*b & 0xC0) == 0x80;
        if (ok) bytes[static_cast<std::size_t>(k)] = *b;
      }
      if (ok) {
        std::int32_t j = 0;
        UChar32 c;
        U8_NEXT(bytes.data(), j, len, c);  // rejects overlong forms and surrogates
        if (c >= 0 && j == len) {
          out.push_back(static_cast<char32_t>(c));
          ++repaired;
          i += static_cast<std::size_t>(len);
          continue;
        }
      }
    }
    out.push_back(in[i]);
    ++i;
  }
  return out;
}

bool is_control(char32_t c) { return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F); }

}  // namespace

DecodeResult decode_utf8(std::string_view bytes) {
  DecodeResult r;
  if (utf8::is_valid(bytes)) {
    r.text = std::string(bytes);
    return r;
  }
  r.text = utf8::make_valid(bytes);
  // Count substitutions that were not in the input already.
  std::size_t before = 0, after = 0;
  for (std::size_t p = 0; (p = bytes.find(utf8::kReplacement, p)) != std::string_view::npos; p += 3) ++before;
  for (std::size_t p = 0; (p = r.text.find(utf8::kReplacement, p)) != std::string::npos; p += 3) ++after;
  r.replaced = after - before;
  return r;
}

std::string repair_mojibake(std::string_view text, std::size_t* repaired) {
  std::u32string cps = code_points(text);
  std::size_t count = 0;
  // Mojibake of mojibake needs a second pass; a third is for the rare triple.
  for (int pass = 0; pass < 3; ++pass) {
    std::size_t n = 0;
    cps = repair_once(cps, n);
    count += n;
    if (n == 0) break;
  }
  if (repaired) *repaired = count;
  return count ? to_utf8(cps) : std::string(text);
}

std::string drop_control_characters(std::string_view text, std::size_t* dropped) {
  std::u32string cps = code_points(text);
  std::u32string out;
  out.reserve(cps.size());
  std::size_t n = 0;
  for (char32_t c : cps) {
    if (is_control(c) && c != U'\t' && c != U'\n' && c != U'\r' && c != 0x85) {
      ++n;
      continue;
    }
    out.push_back(c);
  }
  if (dropped) *dropped = n;
  return n ? to_utf8(out) : std::string(text);
}

std::string normalize_line_breaks(std::string_view text, std::size_t* changed) {
  std::u32string cps = code_points(text);
  std::u32string out;
  out.reserve(cps.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    if (c == U'\r') {
      if (i + 1 < cps.size() && cps[i + 1] == U'\n') ++i;
      out.push_back(U'\n');
      ++n;
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back(U'\n');
      ++n;
    } else {
      out.push_back(c);
    }
  }
  if (changed) *changed = n;
  return n ? to_utf8(out) : std::string(text);
}

std::string to_nfc(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU NFC normalizer unavailable: ") + u_errorName(status));
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (nfc->isNormalized(in, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  const icu::UnicodeString normalized = nfc->normalize(in, status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("NFC normalization failed: ") + u_errorName(status));
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

std::string collapse_blank_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (std::size_t start = 0;;) {
    const std::size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  auto blank = [](std::string_view line) { return line.find_first_not_of(" \t") == std::string_view::npos; };
  std::string out;
  bool pending_blank = false;
  for (std::string_view line : lines) {
    if (blank(line)) {
      pending_blank = !out.empty();
      continue;
    }
    if (!out.empty()) out += pending_blank ? "\n\n" : "\n";
    pending_blank = false;
    out += line;
  }
  return out;
}

std::string paragraph_key(std::string_view paragraph) {
  std::u32string key;
  bool space = false;
  for (char32_t c : code_points(paragraph)) {
    const auto u = static_cast<UChar32>(c);
    if (u_isUWhiteSpace(u)) {
      space = !key.empty();
      continue;
    }
    if (u_ispunct(u) || (U_GET_GC_MASK(u) & U_GC_S_MASK)) continue;
    if (space) key.push_back(U' ');
    space = false;
    key.push_back(u_isdigit(u) ? U'0' : static_cast<char32_t>(u_tolower(u)));
  }
  return to_utf8(key);
}

std::size_t code_point_count(std::string_view text) {
  std::size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace inkstream::training
