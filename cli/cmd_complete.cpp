// `inkstream complete`: run a prompt through a model and print alternatives.
#include <torch/types.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "default_model.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/model_runtime/errors.h"
#include "inkstream/model_runtime/generator.h"

namespace inkstream::cli {
namespace {

using Json = nlohmann::json;

struct CompleteOptions {
  std::string model;
  std::string prompt, prompt_file, prompt_ids;
  GenerationRequest request;
  std::string device = "auto", dtype = "auto";
  int threads = 0;
  bool stream = false, json = false, copy_weights = false;
  int logits = 0;
};

std::vector<TokenId> parse_id_list(const std::string& text) {
  std::vector<TokenId> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
    }
    if (used == 0 || v < 0 || v > INT32_MAX) throw InvalidRequest("--prompt-ids: '" + item + "' is not a token id");
    ids.push_back(static_cast<TokenId>(v));
  }
  return ids;
}

// Live view for a terminal: one line per alternative showing the tail of its
// text, redrawn in place; the full texts are printed when generation ends.
class TerminalView {
 public:
  explicit TerminalView(int n) : lines_(static_cast<std::size_t>(n)) {
    winsize ws{};
    width_ = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10 ? ws.ws_col : 80;
  }
  void update(int index, std::string_view text) {
    std::string flat;
    for (char c : text) flat += c == '\n' ? ' ' : c;
    // Keep the last (width - 6) code points.
    std::size_t chars = 0, cut = flat.size();
    while (cut > 0 && chars < width_ - 6) {
      --cut;
      if ((static_cast<unsigned char>(flat[cut]) & 0xC0) != 0x80) ++chars;
    }
    lines_[static_cast<std::size_t>(index)] = flat.substr(cut);
    redraw();
  }
  void clear() {
    if (drawn_) std::printf("\x1b[%zuF\x1b[J", lines_.size());
    drawn_ = false;
    std::fflush(stdout);
  }

 private:
  void redraw() {
    if (drawn_) std::printf("\x1b[%zuF", lines_.size());
    for (std::size_t i = 0; i < lines_.size(); ++i) std::printf("\x1b[2K[%zu] %s\n", i + 1, lines_[i].c_str());
    drawn_ = true;
    std::fflush(stdout);
  }
  std::vector<std::string> lines_;
  std::size_t width_;
  bool drawn_ = false;
};

Json timings_json(const Timings& t) {
  return {{"prompt_n", t.prompt_n},         {"prompt_ms", t.prompt_ms},
          {"predicted_n", t.predicted_n},   {"predicted_ms", t.predicted_ms},
          {"predicted_per_second", t.predicted_per_second}, {"cache_n", t.cache_n}};
}

int run(CompleteOptions& o) {
  const std::filesystem::path dir = o.model.empty() ? default_model_dir() : std::filesystem::path(o.model);
  if (dir.empty()) throw InvalidRequest("no model: pass --model DIR (the bundled default model was not found)");
  keep_freed_memory_for_inference();  // process-wide, once, by the executable
  allow_matrix_tiles();
  const auto model = Gpt2Model::load(dir, {o.device, o.dtype, o.copy_weights});
  configure_threads(o.threads, model->dtype());
  const Generator generator(model);
  GenerationRequest& req = o.request;
  const int sources = !o.prompt.empty() + !o.prompt_file.empty() + !o.prompt_ids.empty();
  if (sources > 1) throw InvalidRequest("give only one of --prompt, --prompt-file, --prompt-ids");
  if (!o.prompt_ids.empty()) {
    req.prompt = parse_id_list(o.prompt_ids);
  } else if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) throw InvalidRequest("--prompt-file: cannot read " + o.prompt_file);
    std::ostringstream ss;
    ss << in.rdbuf();
    req.prompt = model->tokenizer().encode(ss.str());
  } else {
    req.prompt = model->tokenizer().encode(o.prompt);
  }

  if (o.logits > 0) {
    // Debug aid: the K largest next-token logits after the prompt, raw floats.
    generator.validate(req);
    c10::InferenceMode guard;
    std::vector<std::int64_t> ids(req.prompt.begin(), req.prompt.end());
    if (ids.empty()) ids.push_back(model->config().eos_token_id);
    const auto t = torch::tensor(ids, torch::kLong).view({1, -1}).to(model->device());
    const auto logits = model->forward_last(t).to(torch::kFloat32).to(torch::kCPU)[0];  // (V)
    const auto top = logits.topk(std::min<std::int64_t>(o.logits, logits.size(0)));
    Json out = {{"prompt_ids", ids}, {"top", Json::array()}};
    for (std::int64_t i = 0; i < std::get<0>(top).size(0); ++i)
      out["top"].push_back({std::get<1>(top)[i].item<std::int64_t>(), std::get<0>(top)[i].item<float>()});
    std::cout << out.dump() << "\n";
    return kExitOk;
  }

  const bool tty = isatty(STDOUT_FILENO);
  std::unique_ptr<TerminalView> view;
  StreamCallback on_token;
  if (o.stream && o.json) {
    on_token = [](const StreamEvent& e) {
      std::cout << Json{{"index", e.index}, {"delta", std::string(e.delta)}, {"done", e.done}}.dump() << std::endl;
    };
  } else if (o.stream && req.n == 1) {
    on_token = [](const StreamEvent& e) {
      std::cout << e.delta << std::flush;
    };
  } else if (o.stream && tty) {
    view = std::make_unique<TerminalView>(req.n);
    on_token = [&view](const StreamEvent& e) { view->update(e.index, e.text); };
  }
  const GenerationResult result = generator.generate(req, on_token);
  if (view) view->clear();

  if (o.json) {
    Json alts = Json::array();
    for (const auto& a : result.alternatives)
      alts.push_back({{"index", a.index}, {"text", a.text}, {"token_ids", a.token_ids}, {"finish_reason", finish_reason_name(a.finish_reason)}});
    Json out = {{"alternatives", alts},
                {"timings", timings_json(result.timings)},
                {"model", model->name()},
                {"device", model->device().str()},
                {"dtype", format_label(model->weight_format())},
                {"prompt_tokens_dropped", result.prompt_tokens_dropped}};
    if (!result.error.empty()) out["error"] = result.error;
    std::cout << out.dump() << "\n";
  } else if (o.stream && req.n == 1) {
    std::cout << "\n";
  } else {
    for (const auto& a : result.alternatives)
      std::cout << "[" << a.index + 1 << "] " << a.text << (a.text.ends_with('\n') ? "" : "\n");
  }
  if (!o.json)
    std::fprintf(stderr, "(%d prompt tokens in %.0f ms; %d tokens in %.0f ms, %.1f tokens/s; %s %s)\n",
                 result.timings.prompt_n, result.timings.prompt_ms, result.timings.predicted_n, result.timings.predicted_ms,
                 result.timings.predicted_per_second, model->device().str().c_str(), format_label(model->weight_format()).c_str());
  if (!result.error.empty()) {
    std::cerr << "error: " << result.error << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_complete_command(CLI::App& root, int& exit_code) {
  auto o = std::make_shared<CompleteOptions>();
  CLI::App* cmd = root.add_subcommand("complete", "Continue a prompt with a model: several alternatives, optionally streamed");
  cmd->add_option("--model", o->model, "Hugging Face GPT-2 model folder (default: the bundled model, or $INKSTREAM_MODEL)");
  cmd->add_option("--prompt", o->prompt, "Prompt text");
  cmd->add_option("--prompt-file", o->prompt_file, "Read the prompt from a file");
  cmd->add_option("--prompt-ids", o->prompt_ids, "Prompt as token ids, e.g. 15496,995");
  add_number(cmd, "--n", o->request.n, 1, 16, "Number of alternatives (one batch)");
  add_number(cmd, "--max-tokens", o->request.max_tokens, 1, 2048, "Tokens to generate per alternative");
  add_number(cmd, "--temperature", o->request.sampling.temperature, 0, 5, "0 = greedy");
  add_number(cmd, "--top-k", o->request.sampling.top_k, 0, 1000000, "0 = off");
  add_number(cmd, "--top-p", o->request.sampling.top_p, 0, 1, "Nucleus sampling mass, (0, 1]");
  add_number(cmd, "--min-p", o->request.sampling.min_p, 0, 1, "Drop tokens below min_p x the best one's probability");
  add_number(cmd, "--repeat-penalty", o->request.sampling.repeat_penalty, 0, 10, "1 = off (llama.cpp semantics)");
  add_number(cmd, "--repeat-last-n", o->request.sampling.repeat_last_n, -1, 1000000, "Tokens the penalty looks back at; -1 = all");
  add_number(cmd, "--seed", o->request.seed, 0, 18446744073709551615.0, "Same seed, same text");
  cmd->add_option("--stop", o->request.stop, "Stop string (repeatable); not included in the text");
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "auto, fp32, bf16, fp16 or int8 (CPU)")->capture_default_str();
  add_number(cmd, "--threads", o->threads, 0, 1024, "CPU threads (0 = physical cores)");
  cmd->add_flag("--copy-weights", o->copy_weights, "Copy weights into memory instead of mapping the file (slower load, faster decoding)");
  cmd->add_flag("--stream", o->stream, "Print text as it is generated (with --json: one JSON line per update)");
  cmd->add_flag("--json", o->json, "Print {alternatives, timings, model} as JSON");
  cmd->add_option("--logits", o->logits, "Only run the prompt; print the K largest next-token logits as JSON")->check(CLI::Range(1, 1000000));
  cmd->footer("Example:\n  inkstream complete --model DIR --prompt 'Once upon a time' --n 3 --max-tokens 30 --stream");
  cmd->callback([o, &exit_code] {
    try {
      exit_code = run(*o);
    } catch (const InvalidRequest& e) {
      std::cerr << "error: " << e.what() << "\n";
      exit_code = kExitFailure;
    }
  });
}

}  // namespace inkstream::cli
