#include "inkstream/model_runtime/atomic_file.h"
#include "inkstream/training/corpus_cleaning.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include "inkstream/model_runtime/file_util.h"
#include "inkstream/training/text_cleaning.h"
#include "inkstream/model_runtime/utf8.h"
#include "language_id.h"

namespace inkstream::training {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct RawDocument {
  std::string bytes;
  std::string source;  // "path" or "path#N"
};

bool is_json_lines(const fs::path& p) { return p.extension() == ".jsonl" || p.extension() == ".ndjson"; }

// Every regular file under the inputs, in a stable (sorted) order.
std::vector<fs::path> list_files(const std::vector<fs::path>& inputs) {
  std::vector<fs::path> files;
  for (const fs::path& input : inputs) {
    if (fs::is_directory(input)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::recursive_directory_iterator(input, fs::directory_options::follow_directory_symlink))
        if (e.is_regular_file() && e.path().filename().string().rfind('.', 0) != 0) found.push_back(e.path());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(input)) {
      files.push_back(input);
    } else {
      throw std::runtime_error("input not found: " + input.string());
    }
  }
  return files;
}

// A short before/after excerpt around the first difference.
json change_example(const std::string& source, std::string_view before, std::string_view after) {
  std::size_t i = 0;
  while (i < before.size() && i < after.size() && before[i] == after[i]) ++i;
  auto excerpt = [&](std::string_view s) {
    std::size_t start = i > 30 ? i - 30 : 0;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    std::size_t end = std::min(s.size(), start + 80);
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) ++end;
    return std::string(s.substr(std::min(start, s.size()), end - std::min(start, s.size())));
  };
  // The "before" of the decode step is raw bytes: show it repaired, so the
  // report stays valid JSON.
  return {{"source", source}, {"before", utf8::make_valid(excerpt(before))}, {"after", utf8::make_valid(excerpt(after))}};
}

// Counts and examples of one step.
class StepReport {
 public:
  StepReport(std::string name, std::size_t max_examples) : name_(std::move(name)), max_examples_(max_examples) {}
  void record(const std::string& source, std::size_t count, std::string_view before, std::string_view after) {
    if (count == 0) return;
    ++documents_;
    count_ += count;
    if (examples_.size() < max_examples_) examples_.push_back(change_example(source, before, after));
  }
  void record_drop(const std::string& source, std::string_view text) {
    ++documents_;
    ++count_;
    if (examples_.size() < max_examples_)
      examples_.push_back({{"source", source}, {"text", utf8::make_valid(text.substr(0, 80))}});
  }
  json to_json(const char* count_label) const {
    return {{"step", name_}, {"documents", documents_}, {count_label, count_}, {"examples", examples_}};
  }

 private:
  std::string name_;
  std::size_t max_examples_;
  std::size_t documents_ = 0, count_ = 0;
  json examples_ = json::array();
};

std::vector<RawDocument> read_documents(const std::vector<fs::path>& files, const CleanOptions& options,
                                        StepReport& bad_json) {
  std::vector<RawDocument> docs;
  for (const fs::path& file : files) {
    const std::string bytes = read_whole_file(file);
    if (is_json_lines(file)) {
      std::istringstream lines(bytes);
      std::string line;
      for (std::size_t n = 1; std::getline(lines, line); ++n) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string source = file.string() + ":" + std::to_string(n);
        const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object() || !j.contains(options.text_field) || !j[options.text_field].is_string()) {
          bad_json.record_drop(source, line);  // (record_drop repairs the excerpt)
          continue;
        }
        docs.push_back({j[options.text_field].get<std::string>(), source});
      }
    } else if (options.delimiter.empty()) {
      docs.push_back({bytes, file.string()});
    } else {
      std::size_t start = 0, n = 0;
      for (;;) {
        const std::size_t at = bytes.find(options.delimiter, start);
        docs.push_back({bytes.substr(start, at == std::string::npos ? std::string::npos : at - start),
                        file.string() + "#" + std::to_string(n++)});
        if (at == std::string::npos) break;
        start = at + options.delimiter.size();
      }
    }
  }
  return docs;
}

}  // namespace

bool language_filter_available() { return language_id_available(); }

CleanSummary clean_corpus(const std::vector<fs::path>& inputs, const fs::path& out_dir, const CleanOptions& options) {
  const fs::path out_abs = fs::weakly_canonical(fs::absolute(out_dir));
  for (const fs::path& input : inputs) {
    const fs::path in_abs = fs::weakly_canonical(fs::absolute(input));
    const auto rel = out_abs.lexically_relative(in_abs);
    if (!rel.empty() && *rel.begin() != "..")
      throw std::runtime_error("the output folder " + out_dir.string() + " is inside the input " + input.string() +
                               " (inputs are never modified)");
  }
  if (!options.language.empty() && !language_filter_available())
    throw std::runtime_error("--language needs CLD2, which this build lacks (install libcld2-dev and rebuild)");

  StepReport bad_json("read_json_lines", options.examples_per_step);
  std::vector<RawDocument> raw = read_documents(list_files(inputs), options, bad_json);

  StepReport decode("decode_utf8", options.examples_per_step), mojibake("repair_mojibake", options.examples_per_step),
      controls("drop_control_characters", options.examples_per_step),
      breaks("normalize_line_breaks", options.examples_per_step), nfc("nfc", options.examples_per_step),
      blanks("collapse_blank_lines", options.examples_per_step),
      language("language_filter", options.examples_per_step), dedup("dedup_paragraphs", options.examples_per_step),
      too_short("min_length", options.examples_per_step);
  std::size_t dropped_invalid = 0;

  fs::create_directories(out_dir);
  const fs::path docs_path = out_dir / "documents.jsonl";
  AtomicFile docs_file(docs_path);  // committed at the end: a killed run leaves no half corpus
  std::ofstream& out = docs_file.stream();

  std::unordered_set<std::string> seen_paragraphs;
  CleanSummary summary;
  summary.documents_in = raw.size();
  for (const RawDocument& doc : raw) {
    DecodeResult decoded = decode_utf8(doc.bytes);
    if (decoded.replaced && options.invalid_utf8 == CleanOptions::InvalidUtf8::Drop) {
      ++dropped_invalid;
      decode.record_drop(doc.source, decoded.text);
      continue;
    }
    decode.record(doc.source, decoded.replaced, doc.bytes, decoded.text);
    std::string text = std::move(decoded.text);

    auto apply = [&](StepReport& report, auto&& step) {
      std::size_t n = 0;
      std::string next = step(text, &n);
      report.record(doc.source, n, text, next);
      text = std::move(next);
    };
    apply(mojibake, [](std::string_view t, std::size_t* n) { return repair_mojibake(t, n); });
    apply(controls, [](std::string_view t, std::size_t* n) { return drop_control_characters(t, n); });
    apply(breaks, [](std::string_view t, std::size_t* n) { return normalize_line_breaks(t, n); });
    apply(nfc, [](std::string_view t, std::size_t* n) {
      std::string r = to_nfc(t);
      *n = r != t;
      return r;
    });
    apply(blanks, [](std::string_view t, std::size_t* n) {
      std::string r = collapse_blank_lines(t);
      *n = r != t;
      return r;
    });

    if (!options.language.empty()) {
      const std::string detected = detect_language(text);
      if (detected != options.language) {
        language.record_drop(doc.source, text);
        continue;
      }
    }

    if (options.dedup_paragraphs) {
      std::string kept;
      std::size_t removed = 0;
      for (std::size_t start = 0; start <= text.size();) {
        std::size_t end = text.find("\n\n", start);
        if (end == std::string::npos) end = text.size();
        const std::string_view para(text.data() + start, end - start);
        const std::string key = paragraph_key(para);
        // Paragraphs of punctuation only ("* * *") have an empty key: kept.
        if (key.empty() || seen_paragraphs.insert(key).second) {
          if (!kept.empty()) kept += "\n\n";
          kept += para;
        } else {
          ++removed;
        }
        start = end + 2;
      }
      dedup.record(doc.source, removed, text, kept);
      text = std::move(kept);
    }

    if (code_point_count(text) < options.min_chars) {
      too_short.record_drop(doc.source, text);
      continue;
    }
    out << json{{"text", text}, {"source", utf8::make_valid(doc.source)}}.dump() << '\n';
    ++summary.documents_out;
    summary.chars_out += code_point_count(text);
  }
  docs_file.commit();

  json steps = json::array();
  json d = decode.to_json("replaced_bytes");
  d["action"] = options.invalid_utf8 == CleanOptions::InvalidUtf8::Drop ? "drop" : "repair";
  d["documents_dropped"] = dropped_invalid;
  steps.push_back(d);
  steps.push_back(mojibake.to_json("characters_repaired"));
  steps.push_back(controls.to_json("characters_dropped"));
  steps.push_back(breaks.to_json("line_breaks_changed"));
  steps.push_back(nfc.to_json("documents_changed"));
  steps.push_back(blanks.to_json("documents_changed"));
  json lang = language.to_json("documents_dropped");
  lang["available"] = language_filter_available();
  lang["enabled"] = !options.language.empty();
  if (!options.language.empty()) lang["keep"] = options.language;
  if (!language_filter_available()) lang["note"] = "no language identifier in this build (CLD2 missing)";
  steps.push_back(lang);
  json dd = dedup.to_json("paragraphs_removed");
  dd["enabled"] = options.dedup_paragraphs;
  steps.push_back(dd);
  json ms = too_short.to_json("documents_dropped");
  ms["min_chars"] = options.min_chars;
  steps.push_back(ms);

  json input_list = json::array();
  for (const auto& p : inputs) input_list.push_back(p.string());
  summary.report = {{"inputs", input_list},
                    {"output", docs_path.string()},
                    {"documents_in", summary.documents_in},
                    {"documents_out", summary.documents_out},
                    {"characters_out", summary.chars_out},
                    {"json_lines_skipped", bad_json.to_json("lines")},
                    {"steps", steps}};
  write_file_atomically(out_dir / "report.json", summary.report.dump(2) + '\n');
  return summary;
}

}  // namespace inkstream::training
