// `inkstream tokenize`: text -> ids, or ids -> text with --decode.
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "inkstream/model_runtime/tokenizer.h"

namespace inkstream::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::vector<std::string> text;
  bool json = false;
  bool decode = false;
};

std::string read_stdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

// Accepts "1 2 3", "1,2,3" or a JSON array "[1, 2, 3]".
std::vector<TokenId> parse_ids(const std::string& text) {
  std::string cleaned = text;
  for (char& c : cleaned)
    if (c == ',' || c == '[' || c == ']' || c == '\n' || c == '\r' || c == '\t') c = ' ';
  std::istringstream in(cleaned);
  std::vector<TokenId> ids;
  std::string word;
  while (in >> word) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument("not a token id: '" + word + "'");
    ids.push_back(static_cast<TokenId>(v));
  }
  return ids;
}

int run(const TokenizeOptions& o) {
  const Tokenizer tokenizer = Tokenizer::from_folder(o.model);
  std::string input;
  if (o.text.size() == 1 && o.text[0] == "-") {
    input = read_stdin();
  } else {
    for (std::size_t i = 0; i < o.text.size(); ++i) input += (i ? " " : "") + o.text[i];
  }
  if (o.decode) {
    const std::string text = tokenizer.decode(parse_ids(input));
    if (o.json) {
      std::cout << nlohmann::json(text).dump() << "\n";
    } else {
      std::cout << text;
      if (!text.empty() && text.back() != '\n') std::cout << "\n";
    }
    return kExitOk;
  }
  const std::vector<TokenId> ids = tokenizer.encode(input);
  if (o.json) {
    std::cout << nlohmann::json(ids).dump() << "\n";
  } else {
    for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace

void add_tokenize_command(CLI::App& root, int& exit_code) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = root.add_subcommand("tokenize", "Turn text into GPT-2 token ids (or ids into text with --decode)");
  cmd->add_option("--model", opts->model, "Model folder with vocab.json + merges.txt (or tokenizer.json)")->required();
  cmd->add_flag("--json", opts->json, "Print a JSON array of ids (with --decode: a JSON string)");
  cmd->add_flag("--decode", opts->decode, "Read token ids (space- or comma-separated, or a JSON array) and print the text");
  cmd->add_option("text", opts->text, "Text to encode (several words are joined by spaces); '-' reads stdin as raw bytes");
  cmd->footer("Examples:\n  inkstream tokenize --model DIR 'Hello world'      -> 15496 995\n"
              "  printf 'a\\n' | inkstream tokenize --model DIR --json -\n"
              "  inkstream tokenize --model DIR --decode 15496 995   -> Hello world");
  cmd->callback([opts, &exit_code] { exit_code = run(*opts); });
}

}  // namespace inkstream::cli
