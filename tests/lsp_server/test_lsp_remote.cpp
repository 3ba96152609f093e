// End to end: a real `inkstream lsp` configured with a remote endpoint
// streams ghost text from a real `inkstream serve`, over real pipes and
// real HTTP on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

#include "lsp_client.h"
#include "ports.h"
#include "process.h"

namespace inkstream {
namespace {

using test::Json;
using test::LspProcess;
using namespace std::chrono_literals;

std::string fixture(const char* name) { return std::string(INKSTREAM_FIXTURE_DIR) + "/" + name; }

// A running `inkstream serve` (killed when it goes out of scope).
class Serve {
 public:
  explicit Serve(const std::string& model, int port = 0) {
    pipes_ = test::spawn_with_pipes({INKSTREAM_BINARY, "serve", "--port", std::to_string(port), "--model", "tiny=" + model,
                                     "--threads", "1"});
    ::close(pipes_.in_fd);
    std::string err;
    const auto until = std::chrono::steady_clock::now() + 60s;
    std::smatch m;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{pipes_.err_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char buf[4096];
        const ssize_t n = ::read(pipes_.err_fd, buf, sizeof buf);
        if (n <= 0) break;
        err.append(buf, static_cast<std::size_t>(n));
      }
      if (std::regex_search(err, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"))) {
        port_ = std::stoi(m[1]);
        break;
      }
    }
    if (!port_) throw std::runtime_error("serve did not start: " + err);
    httplib::Client c(base());
    for (int i = 0; i < 600; ++i) {  // ready once its model is loaded
      if (auto r = c.Get("/health"); r && r->status == 200) return;
      std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("serve never became healthy");
  }
  ~Serve() {
    ::kill(pipes_.pid, SIGKILL);
    ::waitpid(pipes_.pid, nullptr, 0);
    ::close(pipes_.out_fd);
    ::close(pipes_.err_fd);
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // A gauge or counter from /metrics.
  double metric(const std::string& name) const {
    httplib::Client c(base());
    auto r = c.Get("/metrics");
    if (!r) return -1;
    std::smatch m;
    if (std::regex_search(r->body, m, std::regex("\n" + name + R"((\{[^}]*\})? ([0-9.e+]+))"))) return std::stod(m[2]);
    return -1;
  }

 private:
  test::ChildPipes pipes_{};
  int port_ = 0;
};

std::unique_ptr<LspProcess> lsp() {
  return std::make_unique<LspProcess>(std::vector<std::string>{INKSTREAM_BINARY, "lsp", "--model", fixture("tiny"), "--log-level", "debug"});
}

const std::string kUri = "file:///story.md";
const std::string kText = "Once upon a time, in a land far away, ";

void open(LspProcess& s) {
  s.notify("textDocument/didOpen", {{"textDocument", {{"uri", kUri}, {"languageId", "markdown"}, {"version", 1}, {"text", kText}}}});
}

Json completion_params() {
  return {{"textDocument", {{"uri", kUri}}}, {"position", {{"line", 0}, {"character", kText.size()}}}, {"context", {{"triggerKind", 2}}}};
}

std::vector<std::string> items_of(const Json& r) {
  std::vector<std::string> out;
  for (const auto& item : r["result"]["items"]) out.push_back(item["insertText"]);
  return out;
}

int count(const std::vector<Json>& notes, const std::string& method) {
  return static_cast<int>(std::count_if(notes.begin(), notes.end(), [&](const Json& n) { return n.value("method", "") == method; }));
}

const Json kSettings = {{"streaming", true}, {"n", 2}, {"max_tokens", 16}, {"stop_at", "none"}, {"stream_interval_ms", 0}, {"seed", 11}};

TEST(LspRemote, StreamsGhostTextFromServeSameAsTheLocalModel) {
  Serve serve(fixture("tiny"));
  Json remote = kSettings;
  remote["remotes"] = {{"node", {{"url", serve.base() + "/v1"}, {"dialect", "inkstream"}}}};
  remote["model"] = "remote:node";
  auto s = lsp();
  s->initialize(remote);
  open(*s);
  std::vector<Json> notes;
  const Json r = s->request("textDocument/inlineCompletion", completion_params(), 60s, &notes);
  ASSERT_TRUE(r.contains("result")) << r.dump();
  const auto items = items_of(r);
  ASSERT_FALSE(items.empty());
  while (auto m = s->next(200ms)) notes.push_back(*m);  // (its status follows the answer)
  EXPECT_GE(count(notes, "inkstream/partialCompletion"), 2) << "streamed as it came";
  bool remote_status = false;
  for (const auto& n : notes)
    if (n.value("method", "") == "inkstream/status" && n["params"].value("source", "") == "remote") remote_status = true;
  EXPECT_TRUE(remote_status);
  EXPECT_EQ(count(notes, "window/showMessage"), 0);

  // The same settings and seed on the local engine give the same text.
  auto local = lsp();
  local->initialize(kSettings);
  open(*local);
  const Json l = local->request("textDocument/inlineCompletion", completion_params(), 60s);
  EXPECT_EQ(items_of(l), items);
}

TEST(LspRemote, OneUrlSettingIsEnoughAndTypingClosesTheStream) {
  Serve serve(INKSTREAM_DEFAULT_MODEL);  // the bundled model: a stream of 400 tokens lasts seconds
  Json settings = kSettings;
  settings["model"] = serve.base();  // the one-setting way: a URL
  settings["max_tokens"] = 200;  // (of its 256-token context)
  settings["n"] = 1;
  auto s = lsp();
  s->initialize(settings);
  open(*s);
  std::vector<Json> notes;
  const int id = s->request_async("textDocument/inlineCompletion", completion_params());
  // Once text streams, the writer types: the request ends ContentModified and
  // the server's generation stops (its running gauge drops).
  for (auto until = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < until;) {
    auto m = s->next(5s);
    ASSERT_TRUE(m) << s->stderr_text();
    ASSERT_FALSE(m->contains("id") && (*m)["id"] == id) << "answered before it streamed: " << m->dump();
    if (m->value("method", "") == "inkstream/partialCompletion") break;
  }
  s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", 2}}},
                                       {"contentChanges", {{{"range", {{"start", {{"line", 0}, {"character", kText.size()}}},
                                                                       {"end", {{"line", 0}, {"character", kText.size()}}}}},
                                                            {"text", "x"}}}}});
  const auto t0 = std::chrono::steady_clock::now();
  const Json r = s->wait_response(id, 10s, &notes);
  ASSERT_TRUE(r.contains("error")) << "the stream ended before the writer typed: " << r.dump();
  EXPECT_EQ(r["error"]["code"], -32801) << r.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  double running = 1;
  for (int i = 0; i < 50 && running != 0; ++i) {
    std::this_thread::sleep_for(20ms);
    running = serve.metric("inkstream:num_requests_running");
  }
  EXPECT_EQ(running, 0) << "the server stopped generating for a closed stream";
  const double generated = serve.metric("inkstream:generation_tokens_total");
  EXPECT_GT(generated, 0);
  EXPECT_LT(generated, 150) << "stopped well before its 200 tokens";
}

TEST(LspRemote, AnUnreachableRemoteIsToldOncePerChangeOfState) {
  const int port = test::closed_port();
  Json settings = kSettings;
  settings["remotes"] = {{"node", {{"url", "http://127.0.0.1:" + std::to_string(port)}, {"retries", 0}, {"breaker_failures", 100}}}};
  settings["model"] = "remote:node";
  auto s = lsp();
  s->initialize(settings);
  open(*s);
  std::vector<Json> notes;
  for (int i = 0; i < 3; ++i) {
    const Json r = s->request("textDocument/inlineCompletion", completion_params(), 30s, &notes);
    ASSERT_TRUE(r.contains("error")) << r.dump();
    EXPECT_NE(r["error"]["message"].get<std::string>().find("cannot connect"), std::string::npos) << r.dump();
  }
  std::vector<std::string> messages;
  auto collect = [&] {
    messages.clear();
    for (const auto& n : notes)
      if (n.value("method", "") == "window/showMessage") messages.push_back(n["params"]["message"]);
  };
  collect();
  ASSERT_EQ(messages.size(), 1u) << "one message for three failed requests";
  EXPECT_NE(messages[0].find("cannot connect"), std::string::npos) << messages[0];

  // The server comes up on that port: the next suggestion works, and says so once.
  Serve serve(fixture("tiny"), port);
  for (int i = 0; i < 2; ++i) {
    const Json r = s->request("textDocument/inlineCompletion", completion_params(), 60s, &notes);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    s->notify("textDocument/didChange", {{"textDocument", {{"uri", kUri}, {"version", 3 + i}}},
                                         {"contentChanges", {{{"text", kText + std::to_string(i) + " "}}}}});
  }
  std::this_thread::sleep_for(100ms);
  while (auto m = s->next(100ms)) notes.push_back(*m);
  collect();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_NE(messages[1].find("answers again"), std::string::npos) << messages[1];
}

TEST(LspRemote, AnUnknownRemoteNameIsAClearError) {
  Json settings = kSettings;
  settings["model"] = "remote:nowhere";
  auto s = lsp();
  s->initialize(settings);
  open(*s);
  const Json r = s->request("textDocument/inlineCompletion", completion_params(), 30s);
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("no remote named 'nowhere'"), std::string::npos) << r.dump();
}

}  // namespace
}  // namespace inkstream
