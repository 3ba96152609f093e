// The language server: lifecycle, dispatch, documents, inline completion.
// Transport (transport.cpp) and dispatch (this file) are separate, as in
// clangd; every request gets exactly one Reply (reply.h).
#include "inkstream/lsp_server/server.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>

#include "inkstream/model_runtime/json_numbers.h"
#include "documents.h"
#include "inkstream/completion/engine.h"
#include "inkstream/model_runtime/device.h"
#include "inkstream/completion/service.h"
#include "protocol.h"
#include "reply.h"
#include "transport.h"

namespace inkstream {
namespace lsp {
namespace {

using Clock = std::chrono::steady_clock;

// Reads a required field of a given JSON type or throws InvalidParams naming it.
const Json& field(const Json& obj, const char* key, const char* path, Json::value_t type) {
  if (!obj.is_object() || !obj.contains(key))
    throw InvalidParams(std::string(path) + " is missing");
  const Json& v = obj[key];
  const bool ok = type == Json::value_t::number_integer ? v.is_number_integer() : v.type() == type;
  if (!ok) throw InvalidParams(std::string(path) + " has the wrong type");
  return v;
}

Position parse_position(const Json& params) {
  const Json& p = field(params, "position", "position", Json::value_t::object);
  // LSP's uinteger: 0 to 2^31 - 1, checked as the JSON number (no wrap-around).
  auto coordinate = [&](const char* key, const char* path) {
    const auto n = json_numbers::integer<std::int64_t>(field(p, key, path, Json::value_t::number_integer), 0, 0x7fffffff);
    if (!n) throw InvalidParams(std::string(path) + " must be an integer from 0 to 2147483647 (got " + p[key].dump() + ")");
    return *n;
  };
  return Position{coordinate("line", "position.line"), coordinate("character", "position.character")};
}

std::string parse_uri(const Json& params) {
  const Json& td = field(params, "textDocument", "textDocument", Json::value_t::object);
  return field(td, "uri", "textDocument.uri", Json::value_t::string).get<std::string>();
}

// true only when the value at `path` exists and is the boolean true.
bool flag(const Json& root, std::initializer_list<const char*> path) {
  const Json* node = &root;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return false;
    node = &(*node)[key];
  }
  return node->is_boolean() && node->get<bool>();
}

// Deeply nested JSON would exhaust the stack when copied or printed; count
// bracket depth (outside strings) before parsing.
constexpr int kMaxJsonDepth = 256;
int nesting_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// Completions of different documents running at once in one model's
// engine batch; more wait in the model's queue.
constexpr int kMaxConcurrentJobs = 16;

int error_code(CancelReason reason) {
  switch (reason) {
    case CancelReason::Cancelled: return error::kRequestCancelled;
    case CancelReason::DocumentChanged: return error::kContentModified;
    case CancelReason::Superseded:
    case CancelReason::ShuttingDown: return error::kServerCancelled;
  }
  return error::kRequestCancelled;
}

const char* error_message(CancelReason reason) {
  switch (reason) {
    case CancelReason::Cancelled: return "request cancelled";
    case CancelReason::DocumentChanged: return "the document changed";
    case CancelReason::Superseded: return "superseded by a newer completion request for this document";
    case CancelReason::ShuttingDown: return "server is shutting down";
  }
  return "request cancelled";
}

class Server;

// A completion request as the protocol sees it: the service's job plus the
// reply (sent exactly once) and the normalised position of its items.
class LspJob final : public CompletionJob {
 public:
  LspJob(Reply r, Server& server) : reply(std::move(r)), server_(server) {}
  void partial(const std::vector<PartialItem>& items) override;
  void done(const CompletionOutcome& outcome, const std::optional<EngineStats>& engine, bool busy) override;

  Reply reply;
  std::int64_t version = 0;
  Position position;
  bool stream = false;
  Json token;  // the request's workDoneToken (client-chosen), echoed in its notifications; null if none

 private:
  Server& server_;
};

// The engine's figures as the protocol shows them.
Json engine_json(const EngineStats& st) {
  const double mb = 1 << 20;
  return {{"running", st.running},
          {"waiting", st.waiting},
          {"promptTokens", st.prompt_tokens},
          {"cachedPromptTokens", st.cached_prompt_tokens},
          {"cacheHitRate", st.prompt_tokens ? static_cast<double>(st.cached_prompt_tokens) / static_cast<double>(st.prompt_tokens) : 0.0},
          {"kvCacheUsedMb", static_cast<double>(st.kv_used_bytes) / mb},
          {"kvCacheMb", static_cast<double>(st.kv_budget_bytes) / mb},
          {"cachedPrompts", st.cached_entries}};
}

class Server {
 public:
  Server(int in_fd, int out_fd, const LspOptions& options)
      : reader_(in_fd, options.max_frame_bytes),
        out_(std::make_shared<FrameWriter>(out_fd)),
        set_threads_(options.set_threads),
        service_(std::make_unique<CompletionService>(
            options.backends,
            CompletionService::Events{[this](const std::string& model, bool loading, const std::string& message) {
                                        on_model_load(model, loading, message);
                                      },
                                      options.release_memory},
            kMaxConcurrentJobs)) {
    settings_.model = options.model;
    settings_.models_dir = options.models_dir;
    // A model that was busy when a newer one loaded goes once idle, also
    // when the writer has stopped typing (after each message alone, its
    // copy stayed in memory until the editor next said something).
    reader_.on_idle(std::chrono::seconds(1), [this] { service_->unload_idle_models(); });
  }

  ~Server() { service_.reset(); }  // join inference before the members its callbacks use

  // Called by LspJob (runner threads, or the protocol thread for instant answers).
  void send_partial(const LspJob& job, const std::vector<PartialItem>& items);
  void finish_job(LspJob& job, const CompletionOutcome& outcome, const std::optional<EngineStats>& engine, bool busy);
  void tell_backend_state(const LspJob& job, const CompletionOutcome& outcome);

  int run() {
    while (!exit_requested_) {
      auto frame = reader_.next();
      if (!frame) break;  // end of input: like exit
      if (!frame->error.empty()) {
        spdlog::error("lsp: {}", frame->error);
        send_error(nullptr, error::kParseError, frame->error);
        continue;
      }
      handle_message(frame->body);
    }
    service_.reset();  // cancels and joins inference
    return shutdown_requested_ ? 0 : 1;  // exit (or end of input) after shutdown is a clean exit
  }

 private:
  // ---- message plumbing ----------------------------------------------------
  void send_error(Json id, int code, const std::string& message) {
    out_->send({{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"error", {{"code", code}, {"message", message}}}});
  }
  void notify(const std::string& method, Json params) {
    out_->send({{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
  }
  void show_message(int type, const std::string& message) { notify("window/showMessage", {{"type", type}, {"message", message}}); }
  void request_client(const std::string& method, Json params) {
    out_->send({{"jsonrpc", "2.0"}, {"id", "inkstream-" + std::to_string(++outgoing_id_)}, {"method", method}, {"params", std::move(params)}});
  }

  void handle_message(const std::string& body) {
    if (nesting_depth(body) > kMaxJsonDepth) {
      send_error(nullptr, error::kParseError, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      return;
    }
    Json msg;
    try {
      msg = Json::parse(body);
    } catch (const Json::exception& e) {  // parse_error, or out_of_range for numbers like 1e400
      send_error(nullptr, error::kParseError, std::string("invalid JSON: ") + e.what());
      return;
    }
    if (msg.is_array()) {
      send_error(nullptr, error::kInvalidRequest, "batch messages are not supported by LSP");
      return;
    }
    if (!msg.is_object()) {
      send_error(nullptr, error::kInvalidRequest, "a message must be a JSON object");
      return;
    }
    const bool has_id = msg.contains("id");
    const Json id = has_id ? msg["id"] : Json();
    if (has_id && !id.is_string() && !id.is_number_integer()) {
      send_error(nullptr, error::kInvalidRequest, "id must be an integer or a string");
      return;
    }
    if (!msg.contains("jsonrpc") || msg["jsonrpc"] != "2.0") {
      if (has_id) send_error(id, error::kInvalidRequest, "\"jsonrpc\" must be \"2.0\"");
      return;
    }
    if (!msg.contains("method")) {
      if (has_id && (msg.contains("result") || msg.contains("error"))) return;  // a client's answer to our request
      send_error(has_id ? id : Json(), error::kInvalidRequest, "message has no method");
      return;
    }
    if (!msg["method"].is_string()) {
      send_error(has_id ? id : Json(), error::kInvalidRequest, "method must be a string");
      return;
    }
    const std::string method = msg["method"].get<std::string>();
    static const Json kNoParams = Json::object();
    const Json& params = msg.contains("params") ? msg["params"] : kNoParams;
    if (has_id) {
      handle_request(Reply(out_, id, method), method, params);
    } else {
      handle_notification(method, params);
    }
    // Models that were busy when newer ones loaded go once idle (a few
    // comparisons: this runs after every message).
    service_->unload_idle_models();
  }

  void handle_request(Reply reply, const std::string& method, const Json& params) {
    // Handlers take the Reply by reference and move it only when they hand
    // the request to a worker, so an exception here is still answered below.
    try {
      if (method == "initialize") return on_initialize(reply, params);
      if (!initialized_) return reply.error(error::kServerNotInitialized, "the server is not initialized yet");
      if (shutdown_requested_) return reply.error(error::kInvalidRequest, "the server is shutting down");
      if (method == "shutdown") return on_shutdown(reply);
      if (method == "textDocument/inlineCompletion") return on_inline_completion(reply, params);
      if (method == "workspace/executeCommand") return on_execute_command(reply, params);
      reply.error(error::kMethodNotFound, "method not found: " + method);
    } catch (const InvalidParams& e) {
      reply.error(error::kInvalidParams, "invalid params for " + method + ": " + e.what());
    } catch (const Json::exception& e) {
      reply.error(error::kInvalidParams, "invalid params for " + method + ": " + e.what());
    } catch (const std::exception& e) {
      // Unexpected (thread creation, file system...): the request fails, the
      // server goes on. A Reply already handed to a job ignores this.
      spdlog::error("lsp: {} failed: {}", method, e.what());
      reply.error(error::kRequestFailed, method + " failed: " + e.what());
    }
  }

  void handle_notification(const std::string& method, const Json& params) {
    if (method == "exit") {
      exit_requested_ = true;
      return;
    }
    if (!initialized_) return;  // notifications before initialize are dropped
    try {
      if (method == "initialized") return on_initialized();
      if (method == "$/cancelRequest") return on_cancel(params);
      if (method == "textDocument/didOpen") return on_did_open(params);
      if (method == "textDocument/didChange") return on_did_change(params);
      if (method == "textDocument/didClose") return on_did_close(params);
      if (method == "workspace/didChangeConfiguration") return on_configuration(params);
      // Other notifications, $/ ones included, are ignored as the spec allows.
    } catch (const std::exception& e) {
      spdlog::error("lsp: bad {} notification: {}", method, e.what());
    }
  }

  // ---- lifecycle ---------------------------------------------------------
  void on_initialize(Reply& reply, const Json& params) {
    if (initialized_) return reply.error(error::kInvalidRequest, "initialize was already called");
    if (!params.is_object()) return reply.error(error::kInvalidParams, "invalid params for initialize: params must be an object");
    static const Json kNoCaps = Json::object();
    const Json& caps = params.contains("capabilities") && params["capabilities"].is_object() ? params["capabilities"] : kNoCaps;
    // Position encoding: utf-8 when offered (cheapest for us), else utf-32, else the default utf-16.
    encoding_ = PositionEncoding::Utf16;
    if (caps.contains("general") && caps["general"].is_object() && caps["general"].contains("positionEncodings") &&
        caps["general"]["positionEncodings"].is_array()) {
      const Json& offered = caps["general"]["positionEncodings"];
      auto has = [&](const char* e) { return std::find(offered.begin(), offered.end(), Json(e)) != offered.end(); };
      if (has("utf-8")) encoding_ = PositionEncoding::Utf8;
      else if (has("utf-32")) encoding_ = PositionEncoding::Utf32;
    }
    work_done_progress_ = flag(caps, {"window", "workDoneProgress"});
    static const Json kNone = Json::object();
    const Json& init = params.contains("initializationOptions") ? params["initializationOptions"] : kNone;
    streaming_ = flag(init, {"streaming"}) || flag(caps, {"experimental", "inkstream", "partialCompletion"});
    if (init.is_object()) apply_settings(init);
    initialized_ = true;
    reply.result({{"capabilities",
                   {{"positionEncoding", encoding_name(encoding_)},
                    {"textDocumentSync", {{"openClose", true}, {"change", 2}}},
                    {"inlineCompletionProvider", true},
                    {"executeCommandProvider", {{"commands", {"inkstream.accept", "inkstream.status", "inkstream.documentText"}}}},
                    {"experimental", {{"inkstream", {{"partialCompletion", true}}}}}}},
                  {"serverInfo", {{"name", "inkstream"}, {"version", INKSTREAM_VERSION}}}});
  }

  void on_initialized() {
    // Start loading the default model now, so the first completion is fast.
    if (!settings_.model.empty()) service_->preload(spec_for(settings_.model));
  }

  void on_shutdown(Reply& reply) {
    shutdown_requested_ = true;
    service_->cancel_if([](const CompletionJob&) { return true; }, CancelReason::ShuttingDown);
    reply.result(nullptr);
  }

  // ---- documents -----------------------------------------------------------
  void on_did_open(const Json& params) {
    const Json& td = field(params, "textDocument", "textDocument", Json::value_t::object);
    Document doc;
    doc.uri = field(td, "uri", "textDocument.uri", Json::value_t::string).get<std::string>();
    doc.language_id = td.value("languageId", "");
    doc.version = td.contains("version") ? json_numbers::integer<std::int64_t>(td["version"]).value_or(0) : 0;
    doc.text = field(td, "text", "textDocument.text", Json::value_t::string).get<std::string>();
    const std::string uri = doc.uri;
    try {
      documents_.open(std::move(doc));
    } catch (const std::length_error& e) {
      documents_.close(uri);  // (a reopened document that grew: its old copy goes too)
      spdlog::warn("lsp: {}", e.what());
      show_message(2, std::string("inkstream: ") + e.what());
    }
  }

  void on_did_change(const Json& params) {
    const std::string uri = parse_uri(params);
    const Json& td = params["textDocument"];
    const std::int64_t version = td.contains("version") ? json_numbers::integer<std::int64_t>(td["version"]).value_or(0) : 0;
    spdlog::debug("lsp: {} changed (version {})", uri, version);
    try {
      documents_.change(uri, version, params.contains("contentChanges") ? params["contentChanges"] : Json(), encoding_);
    } catch (const std::invalid_argument& e) {
      spdlog::error("lsp: {}", e.what());
      return;
    } catch (const std::length_error& e) {
      // The server's copy can no longer follow the editor's: it goes, and
      // completions for it say the document is not open.
      service_->cancel_if([&](const CompletionJob& j) { return j.document == uri; }, CancelReason::DocumentChanged);
      documents_.close(uri);
      spdlog::warn("lsp: {}", e.what());
      show_message(2, std::string("inkstream: ") + e.what());
      return;
    }
    // The writer kept typing: older completions for this document are stale.
    service_->cancel_if([&](const CompletionJob& j) { return j.document == uri; }, CancelReason::DocumentChanged);
  }

  void on_did_close(const Json& params) {
    const std::string uri = parse_uri(params);
    service_->cancel_if([&](const CompletionJob& j) { return j.document == uri; }, CancelReason::Cancelled);
    documents_.close(uri);
    service_->forget(uri);
  }

  // ---- configuration -----------------------------------------------------
  void apply_settings(const Json& patch) {
    std::vector<std::string> errors;
    if (patch.is_object()) {
      Json clean = patch;
      clean.erase("streaming");
      settings_.apply(clean, errors);
      // (remotes as the settings show them: header values may be secrets)
      if (clean.contains("remotes")) clean["remotes"] = settings_.to_json()["remotes"];
      spdlog::info("lsp: settings applied: {}", clean.dump());
    } else {
      errors.push_back("settings must be a JSON object");
    }
    if (set_threads_ && threads_applied_ != settings_.threads) {
      set_threads_(settings_.threads);
      threads_applied_ = settings_.threads;
    }
    if (!errors.empty()) {
      std::string message = "inkstream: invalid settings (previous values kept): ";
      for (std::size_t i = 0; i < errors.size(); ++i) message += (i ? "; " : "") + errors[i];
      spdlog::warn("lsp: {}", message);
      show_message(2, message);
    }
  }

  void on_configuration(const Json& params) {
    if (!params.is_object() || !params.contains("settings")) return;
    const Json& s = params["settings"];
    if (s.is_object() && s.contains("inkstream")) apply_settings(s["inkstream"]);
    else if (s.is_object()) apply_settings(s);
  }

  std::string resolve_model(const std::string& name) const {
    if (name.empty() || is_remote_model(name)) return name;
    std::error_code ec;
    const auto in_dir = std::filesystem::path(settings_.models_dir) / name;
    if (!settings_.models_dir.empty() && !std::filesystem::is_directory(name, ec) && std::filesystem::is_directory(in_dir, ec))
      return in_dir.string();
    return name;
  }

  // The model a request goes to, with the settings that need their own copy.
  ModelSpec spec_for(const std::string& model_name) {
    service_->set_max_loaded_models(settings_.max_loaded_models);
    return ModelSpec::from(settings_, resolve_model(model_name));
  }

  // Called on the model's loader thread.
  void on_model_load(const std::string& model, bool loading, const std::string& error_message) {
    if (work_done_progress_) {
      const std::string token = "inkstream/load/" + model;
      if (loading) {
        request_client("window/workDoneProgress/create", {{"token", token}});
        notify("$/progress", {{"token", token}, {"value", {{"kind", "begin"}, {"title", "inkstream: loading model"}, {"message", "loading " + model}}}});
      } else {
        notify("$/progress", {{"token", token}, {"value", {{"kind", "end"}, {"message", error_message.empty() ? "ready" : error_message}}}});
      }
    }
    if (!loading && !error_message.empty()) show_message(1, "inkstream: " + error_message);
    if (!loading)
      notify("inkstream/status", {{"busy", false}, {"model", model}, {"message", error_message.empty() ? "ready" : error_message}, {"tokensPerSecond", 0}});
  }

  // ---- inline completion -----------------------------------------------------
  void on_inline_completion(Reply& reply, const Json& params) {
    const std::string uri = parse_uri(params);
    const Position pos = parse_position(params);
    Json token = parse_token(params);
    const Document* doc = documents_.find(uri);
    if (!doc) throw InvalidParams("textDocument.uri is not an open document: " + uri);
    const auto offset = offset_of(doc->text, pos, encoding_);
    if (!offset) throw InvalidParams("position line " + std::to_string(pos.line) + " is outside the document");
    const std::string model = settings_.model_for(doc->language_id, uri);
    if (model.empty()) return reply.error(error::kRequestFailed, "no model configured: set \"model\" in initializationOptions or start `inkstream lsp --model DIR`");

    // Newest wins: whatever still runs for this document is superseded, on
    // every model, whether or not this request needs inference.
    service_->cancel_if([&](const CompletionJob& j) { return j.document == uri; }, CancelReason::Superseded);
    auto job = std::make_shared<LspJob>(std::move(reply), *this);
    job->document = uri;
    job->version = doc->version;
    job->position = position_of(doc->text, *offset, encoding_);  // normalised (clamped) position
    job->stream = streaming_;
    job->token = std::move(token);
    job->query = {uri, doc->text.substr(0, *offset), doc->text.substr(*offset), settings_, resolve_model(model)};
    const std::string request_id = job->reply.id().dump();
    spdlog::debug("lsp: completion {} requested at {}:{}:{} (version {})", request_id, uri, job->position.line, job->position.character,
                  doc->version);
    ++requests_;
    // Typing through a suggestion, or an identical request: no inference.
    if (auto instant = service_->answer_instantly(job->query)) {
      instant_answers_++;
      finish_job(*job, *instant, std::nullopt, false);
      return;
    }
    jobs_[request_id] = job;
    if (jobs_.size() > 1024) prune_jobs();
    service_->submit(job, spec_for(model));
  }

  // The client's own name for a request (LSP's ProgressToken: an integer or a
  // string), which its streamed notifications carry: clients whose LSP
  // library hides JSON-RPC ids (vscode-languageclient) correlate by it.
  static Json parse_token(const Json& params) {
    if (!params.contains("workDoneToken")) return nullptr;
    const Json& t = params["workDoneToken"];
    if (t.is_string() || t.is_number_integer()) return t;
    throw InvalidParams("workDoneToken must be an integer or a string");
  }

  void on_cancel(const Json& params) {
    if (!params.is_object() || !params.contains("id")) return;
    const std::string id = params["id"].dump();
    const auto it = jobs_.find(id);
    spdlog::debug("lsp: $/cancelRequest for completion {}{}", id, it == jobs_.end() ? " (not running)" : "");
    if (it == jobs_.end()) return;
    if (auto job = it->second.lock())
      service_->cancel_if([&](const CompletionJob& j) { return &j == job.get(); }, CancelReason::Cancelled);
    jobs_.erase(it);
  }

  void prune_jobs() {
    for (auto it = jobs_.begin(); it != jobs_.end();) it = it->second.expired() ? jobs_.erase(it) : std::next(it);
  }

  Json position_json(const Position& p) const { return {{"line", p.line}, {"character", p.character}}; }

  // ---- commands ------------------------------------------------------------
  void on_execute_command(Reply& reply, const Json& params) {
    const std::string command = field(params, "command", "command", Json::value_t::string).get<std::string>();
    const Json args = params.value("arguments", Json::array());
    if (command == "inkstream.documentText") {
      // Debug aid: the server's copy of a document, to check a client's sync.
      if (!args.is_array() || args.empty() || !args[0].is_string()) throw InvalidParams("arguments must be [uri]");
      const Document* doc = documents_.find(args[0].get<std::string>());
      if (!doc) throw InvalidParams("not an open document: " + args[0].get<std::string>());
      return reply.result({{"text", doc->text}, {"version", doc->version}});
    }
    if (command == "inkstream.status") {
      Json models = Json::array();
      int busy = 0;
      for (const ModelStatus& st : service_->status()) {
        Json m = {{"model", st.model}, {"loaded", st.loaded}, {"busy", st.busy}};
        if (st.engine) m["engine"] = engine_json(*st.engine);
        busy += st.busy;
        models.push_back(std::move(m));
      }
      return reply.result({{"requests", requests_.load()}, {"instantAnswers", instant_answers_.load()}, {"accepted", accepted_.load()},
                           {"cancelled", cancelled_.load()}, {"settings", settings_.to_json()}, {"streaming", streaming_},
                           {"positionEncoding", encoding_name(encoding_)}, {"busy", busy}, {"models", models}});
    }
    if (command != "inkstream.accept") throw InvalidParams("unknown command: " + command);
    ++accepted_;
    spdlog::info("lsp: suggestion accepted: {}", args.dump());
    reply.result(nullptr);
  }

  FrameReader reader_;
  std::shared_ptr<FrameWriter> out_;
  std::function<void(int)> set_threads_;
  std::optional<int> threads_applied_;
  DocumentStore documents_;
  CompletionSettings settings_;
  PositionEncoding encoding_ = PositionEncoding::Utf16;
  bool initialized_ = false, shutdown_requested_ = false, exit_requested_ = false;
  bool streaming_ = false, work_done_progress_ = false;
  std::atomic<int> outgoing_id_{0};
  std::map<std::string, std::weak_ptr<LspJob>> jobs_;  // request id -> job, for $/cancelRequest
  std::mutex state_mutex_;  // guards backend_state_ (jobs end on runner threads)
  std::map<std::string, std::string> backend_state_;  // model -> its last error kind ("" = fine)
  std::unique_ptr<CompletionService> service_;  // last member: destroyed (joined) first
  std::atomic<int> requests_{0}, instant_answers_{0}, accepted_{0}, cancelled_{0};
};

void Server::send_partial(const LspJob& job, const std::vector<PartialItem>& items) {
  if (!job.stream) return;
  Json list = Json::array();
  for (const auto& item : items) list.push_back({{"index", item.index}, {"text", item.text}, {"done", item.done}});
  Json params = {{"requestId", job.reply.id()},
                 {"textDocument", {{"uri", job.document}}},
                 {"position", position_json(job.position)},
                 {"items", list}};
  if (!job.token.is_null()) params["token"] = job.token;
  notify("inkstream/partialCompletion", params);
}

void Server::finish_job(LspJob& job, const CompletionOutcome& outcome, const std::optional<EngineStats>& engine, bool busy) {
  Reply& reply = job.reply;
  tell_backend_state(job, outcome);  // (before the answer: a client that shows the error sees the message first)
  if (outcome.cancelled) {
    ++cancelled_;
    reply.error(error_code(job.cancel_reason()), error_message(job.cancel_reason()));
  } else if (!outcome.error.empty()) {
    reply.error(error::kRequestFailed, outcome.error);
  } else {
    Json items = Json::array();
    for (std::size_t i = 0; i < outcome.items.size(); ++i)
      items.push_back({{"insertText", outcome.items[i]},
                       {"range", {{"start", position_json(job.position)}, {"end", position_json(job.position)}}},
                       {"command",
                        {{"title", "inkstream: accept"},
                         {"command", "inkstream.accept"},
                         {"arguments", {{{"requestId", job.reply.id()}, {"index", i}, {"source", outcome.source}}}}}}});
    // (items keep the alternatives' order; empty and duplicate ones are left out)
    reply.result({{"items", items}});
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - job.received).count();
  spdlog::info("lsp: completion {} {} in {:.0f} ms ({}, {} streamed updates, {} items, {} of {} prompt tokens reused, prompt read in {:.1f} ms)",
               job.reply.id().dump(), outcome.cancelled ? "cancelled" : outcome.error.empty() ? "answered" : "failed", ms,
               outcome.source, job.stream ? outcome.streamed_updates : 0, outcome.items.size(), outcome.timings.cache_n,
               outcome.timings.cache_n + outcome.timings.prompt_n, outcome.timings.prompt_ms);
  Json status = {{"requestId", job.reply.id()},
                 {"busy", busy},
                 {"model", job.query.model},
                 {"message", outcome.cancelled ? "cancelled" : outcome.error.empty() ? "ready" : outcome.error},
                 {"tokensPerSecond", outcome.timings.predicted_per_second},
                 {"latencyMs", ms},
                 {"source", outcome.source},
                 {"promptTokens", outcome.timings.prompt_n + outcome.timings.cache_n},
                 {"cachedTokens", outcome.timings.cache_n},
                 {"generatedTokens", outcome.timings.predicted_n}};
  if (!job.token.is_null()) status["token"] = job.token;
  if (!outcome.error_kind.empty()) status["errorKind"] = outcome.error_kind;
  if (!outcome.warning.empty()) status["warning"] = outcome.warning;
  if (engine) status["engine"] = engine_json(*engine);
  notify("inkstream/status", status);
}

// A remote's trouble is told once per change of state (unreachable, then
// unauthorized, then fine again...), not once per keystroke; every request
// still gets its error reply and status.
void Server::tell_backend_state(const LspJob& job, const CompletionOutcome& outcome) {
  if (outcome.cancelled || (outcome.source != "remote" && outcome.error_kind.empty())) return;
  std::lock_guard lock(state_mutex_);
  std::string& last = backend_state_[job.query.model];
  if (outcome.error_kind == last) return;
  if (!outcome.error.empty()) show_message(1, "inkstream: " + outcome.error);
  else if (!outcome.warning.empty()) show_message(2, "inkstream: " + outcome.warning);
  else if (!last.empty()) show_message(3, "inkstream: " + job.query.model + " answers again");
  last = outcome.error_kind;
}


void LspJob::partial(const std::vector<PartialItem>& items) { server_.send_partial(*this, items); }

void LspJob::done(const CompletionOutcome& outcome, const std::optional<EngineStats>& engine, bool busy) {
  server_.finish_job(*this, outcome, engine, busy);
}

}  // namespace
}  // namespace lsp

int run_language_server(int in_fd, int out_fd, const LspOptions& options) {
  // (SIGPIPE is ignored by the executable: a client that goes away must end
  // in an orderly exit, not a kill.)
  lsp::Server server(in_fd, out_fd, options);
  return server.run();
}

}  // namespace inkstream
