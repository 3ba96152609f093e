// Choosing the text the model continues from.
#include <vector>

#include "inkstream/completion/engine.h"

namespace inkstream {
namespace {

// Start of the UTF-8 character containing byte `i`.
std::size_t char_start(std::string_view s, std::size_t i) {
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// Positions in `w` where a paragraph or a sentence starts, paragraphs first,
// each list in increasing order.
std::vector<std::size_t> boundaries(std::string_view w) {
  std::vector<std::size_t> paragraphs, sentences;
  for (std::size_t i = 0; i + 1 < w.size(); ++i) {
    if (w[i] == '\n' && w[i + 1] == '\n') {
      std::size_t j = i + 2;
      while (j < w.size() && w[j] == '\n') ++j;
      if (j < w.size()) paragraphs.push_back(j);
    } else if ((w[i] == '.' || w[i] == '!' || w[i] == '?') && w[i + 1] == ' ') {
      std::size_t j = i + 2;
      while (j < w.size() && w[j] == ' ') ++j;
      if (j < w.size()) sentences.push_back(j);
    }
  }
  paragraphs.insert(paragraphs.end(), sentences.begin(), sentences.end());
  return paragraphs;
}

}  // namespace

std::string build_context(std::string_view before, int context_chars, int token_budget,
                          const std::function<int(std::string_view)>& count_tokens) {
  // Up to context_chars characters (not bytes) before the cursor.
  std::size_t start = before.size();
  for (int chars = 0; start > 0 && chars < context_chars; ++chars) start = char_start(before, start - 1);
  std::string_view w = before.substr(start);
  if (start > 0) {
    // Cut mid-text: begin at the first boundary in the first quarter of the
    // window rather than mid-sentence.
    for (const std::size_t b : boundaries(w))
      if (b <= w.size() / 4) {
        w = w.substr(b);
        break;
      }
  }
  if (token_budget <= 0 || count_tokens(w) <= token_budget) return std::string(w);
  // Too many tokens: the earliest boundary that fits.
  for (const std::size_t b : boundaries(w))
    if (count_tokens(w.substr(b)) <= token_budget) return std::string(w.substr(b));
  // No boundary fits (one enormous sentence): the generator keeps the last
  // tokens that fit.
  return std::string(w);
}

}  // namespace inkstream
