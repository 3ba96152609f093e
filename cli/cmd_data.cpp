// `inkstream data clean` and `inkstream data tokenize`: preparing a corpus
// for `inkstream train`.
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "inkstream/training/corpus_cleaning.h"
#include "inkstream/training/token_dataset.h"

namespace inkstream::cli {
namespace {

// "\n%\n" on a command line arrives as backslash-n: accept C escapes.
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == '0' ? '\0' : c;
  }
  return out;
}

struct CleanArgs {
  std::vector<std::string> inputs;
  std::string out, delimiter, invalid = "repair";
  training::CleanOptions options;
  bool no_dedup = false;
};

struct TokenizeArgs {
  std::string in, tokenizer, out;
  training::TokenizeOptions options;
};

}  // namespace

void add_data_command(CLI::App& root, int& exit_code) {
  CLI::App* data = root.add_subcommand("data", "Prepare training data: clean a corpus, tokenize it");
  data->require_subcommand(1);

  auto c = std::make_shared<CleanArgs>();
  CLI::App* clean = data->add_subcommand("clean", "Clean text files, folders or JSON lines into OUT/documents.jsonl + OUT/report.json");
  clean->add_option("inputs", c->inputs, "Text files, folders (recursive) or .jsonl files")->required();
  clean->add_option("--out", c->out, "Output folder (never one of the inputs)")->required();
  clean->add_option("--delimiter", c->delimiter, "Split text files into documents at this string (C escapes, e.g. '\\n%\\n'); default: one document per file");
  clean->add_option("--text-field", c->options.text_field, "Field of a JSON line holding the text")->capture_default_str();
  clean->add_option("--invalid-utf8", c->invalid, "repair (U+FFFD) or drop (the document)")->check(CLI::IsMember({"repair", "drop"}))->capture_default_str();
  add_number(clean, "--min-chars", c->options.min_chars, 0, 1000000000.0, "Drop documents shorter than this after cleaning");
  clean->add_option("--language", c->options.language, "Keep only documents in this language (ISO 639-1, e.g. en; uses CLD2)");
  clean->add_flag("--no-dedup", c->no_dedup, "Keep repeated paragraphs");
  clean->callback([c, &exit_code] {
    training::CleanOptions o = c->options;
    o.delimiter = unescape(c->delimiter);
    o.invalid_utf8 = c->invalid == "drop" ? training::CleanOptions::InvalidUtf8::Drop : training::CleanOptions::InvalidUtf8::Repair;
    o.dedup_paragraphs = !c->no_dedup;
    std::vector<std::filesystem::path> inputs(c->inputs.begin(), c->inputs.end());
    const auto summary = training::clean_corpus(inputs, c->out, o);
    std::fprintf(stderr, "%zu documents in, %zu kept (%zu characters) -> %s/documents.jsonl; report in %s/report.json\n",
                 summary.documents_in, summary.documents_out, summary.chars_out, c->out.c_str(), c->out.c_str());
    exit_code = kExitOk;
  });

  auto t = std::make_shared<TokenizeArgs>();
  CLI::App* tok = data->add_subcommand("tokenize", "Tokenize cleaned documents into token shards with a train/validation split");
  tok->add_option("in", t->in, "Folder from `data clean` (or .jsonl / text files)")->required();
  tok->add_option("--model-or-tokenizer", t->tokenizer, "Model folder or folder with vocab.json + merges.txt")->required();
  tok->add_option("--out", t->out, "Output dataset folder")->required();
  add_number(tok, "--val-fraction", t->options.val_fraction, 0, 1, "Share of documents held out for validation");
  add_number(tok, "--seed", t->options.seed, 0, 18446744073709551615.0, "Seed of the train/validation split");
  add_number(tok, "--shard-tokens", t->options.shard_tokens, 1, 1000000000000.0, "Tokens per shard at most");
  tok->callback([t, &exit_code] {
    const auto s = training::tokenize_dataset(t->in, t->tokenizer, t->out, t->options);
    std::fprintf(stderr, "train: %llu documents, %llu tokens; validation: %llu documents, %llu tokens -> %s\n",
                 static_cast<unsigned long long>(s.train.documents), static_cast<unsigned long long>(s.train.tokens),
                 static_cast<unsigned long long>(s.val.documents), static_cast<unsigned long long>(s.val.tokens), t->out.c_str());
    exit_code = kExitOk;
  });
}

}  // namespace inkstream::cli
