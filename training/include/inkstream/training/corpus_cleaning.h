#pragma once
// `inkstream data clean`: reads documents from text files, folders and JSON
// lines, runs the cleaning steps of text_cleaning.h on each, then the
// corpus-level steps (optional language filter, paragraph de-duplication
// across the whole corpus, minimum length), and writes the kept documents
// plus a JSON report of what each step changed. Inputs are only read.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace inkstream::training {

struct CleanOptions {
  enum class InvalidUtf8 { Repair, Drop };
  InvalidUtf8 invalid_utf8 = InvalidUtf8::Repair;  // Repair: U+FFFD; Drop: drop the document
  std::string delimiter;            // splits a text file into documents; empty = one per file
  std::string text_field = "text";  // the field of a .jsonl line that holds the document
  std::size_t min_chars = 100;      // documents shorter than this (code points, after cleaning) go
  bool dedup_paragraphs = true;
  std::string language;             // ISO 639-1 code to keep (e.g. "en"); empty = no filter
  std::size_t examples_per_step = 3;
};

struct CleanSummary {
  std::size_t documents_in = 0;
  std::size_t documents_out = 0;
  std::size_t chars_out = 0;
  nlohmann::json report;  // also written to OUT/report.json
};

// Writes OUT/documents.jsonl ({"text", "source"} per line, in input order)
// and OUT/report.json. Throws std::runtime_error for unreadable inputs or an
// output folder that is, or is inside, an input.
CleanSummary clean_corpus(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out_dir,
                          const CleanOptions& options);

// True when a language identifier (CLD2) was built in.
bool language_filter_available();

}  // namespace inkstream::training
