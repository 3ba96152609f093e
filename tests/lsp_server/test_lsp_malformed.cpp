// Malformed input never crashes or hangs the server: each gets its error and
// the next valid request is answered.
#include <gtest/gtest.h>

#include "lsp_client.h"

namespace inkstream {
namespace {

using test::Json;
using test::LspProcess;
using namespace std::chrono_literals;

std::string frame(const std::string& body) { return "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body; }

struct Case {
  const char* name;
  std::string bytes;
  int expected_code;  // 0 = no reply expected (ignored notification)
  bool id_null = true;
};

TEST(LspMalformed, EveryBadInputGetsItsErrorAndTheServerCarriesOn) {
  LspProcess s({INKSTREAM_BINARY, "lsp", "--max-frame-bytes", "100000"});
  // Before initialize: requests are refused.
  const Json early = s.request("textDocument/inlineCompletion", Json::object(), 5s);
  EXPECT_EQ(early["error"]["code"], -32002);
  s.initialize();
  const std::vector<Case> cases = {
      {"invalid JSON", frame("{\"jsonrpc\": \"2.0\", \"id\": 1, "), -32700},
      {"not JSON at all", frame("hello there"), -32700},
      {"batch", frame(R"([{"jsonrpc":"2.0","id":1,"method":"shutdown"}])"), -32600},
      {"a number", frame("42"), -32600},
      {"a string", frame("\"text\""), -32600},
      {"id is an object", frame(R"({"jsonrpc":"2.0","id":{"a":1},"method":"shutdown"})"), -32600},
      {"missing jsonrpc", frame(R"({"id":7,"method":"shutdown"})"), -32600, false},
      {"method not a string", frame(R"({"jsonrpc":"2.0","id":8,"method":5})"), -32600, false},
      {"no method", frame(R"({"jsonrpc":"2.0","id":9})"), -32600, false},
      {"unknown request", frame(R"({"jsonrpc":"2.0","id":10,"method":"textDocument/hover","params":{}})"), -32601, false},
      {"params of the wrong type", frame(R"({"jsonrpc":"2.0","id":11,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":5},"position":{"line":0,"character":0}}})"), -32602, false},
      {"missing position", frame(R"({"jsonrpc":"2.0","id":12,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"file:///x"}}})"), -32602, false},
      {"negative line", frame(R"({"jsonrpc":"2.0","id":13,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"file:///x"},"position":{"line":-1,"character":0}}})"), -32602, false},
      {"line past 2^32 (never wrapped to 0)", frame(R"({"jsonrpc":"2.0","id":20,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"file:///a.md"},"position":{"line":4294967296,"character":0}}})"), -32602, false},
      {"character 2^64-1 (never -1)", frame(R"({"jsonrpc":"2.0","id":21,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"file:///a.md"},"position":{"line":0,"character":18446744073709551615}}})"), -32602, false},
      {"document not open", frame(R"({"jsonrpc":"2.0","id":14,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"file:///nope"},"position":{"line":0,"character":0}}})"), -32602, false},
      {"second initialize", frame(R"({"jsonrpc":"2.0","id":15,"method":"initialize","params":{"capabilities":{}}})"), -32600, false},
      {"unknown command", frame(R"({"jsonrpc":"2.0","id":16,"method":"workspace/executeCommand","params":{"command":"rm -rf"}})"), -32602, false},
      {"huge frame", frame(R"({"jsonrpc":"2.0","id":17,"method":"x","params":")" + std::string(200000, 'a') + "\"}"), -32700},
      {"bad Content-Length", "Content-Length: abc\r\n\r\n", -32700},
      {"missing Content-Length", "Content-Type: application/vscode-jsonrpc\r\n\r\n", -32700},
      {"lower-case header", "content-length: 44\r\ncontent-type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" +
                                std::string(R"({"jsonrpc":"2.0","id":18,"method":"no/such"})"), -32601, false},
      {"garbage before a frame", "xyz" + frame(R"({"jsonrpc":"2.0","id":19,"method":"no/such"})"), -32601, false},
      {"number out of range", frame(R"({"jsonrpc":"2.0","id":1e400,"method":"shutdown"})"), -32700},
      {"nesting 20000 deep", frame(R"({"jsonrpc":"2.0","method":"x","params":)" + std::string(20000, '[') + std::string(20000, ']') + "}"), -32700},
      {"Content-Length with a tab and a sign", "Content-Length:\t-5\r\n\r\n", -32700},
      {"unknown notification", frame(R"({"jsonrpc":"2.0","method":"$/setTrace","params":{"value":"off"}})"), 0},
      {"edit outside the document", frame(R"({"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"file:///a.md","version":2},"contentChanges":[{"range":{"start":{"line":40,"character":0},"end":{"line":41,"character":0}},"text":"x"}]}})"), 0},
  };
  s.notify("textDocument/didOpen", {{"textDocument", {{"uri", "file:///a.md"}, {"languageId", "markdown"}, {"version", 1}, {"text", "abc"}}}});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    s.send_raw(c.bytes);
    // Then a valid request: the server must still answer it.
    const int probe = s.request_async("workspace/executeCommand", {{"command", "inkstream.documentText"}, {"arguments", {"file:///a.md"}}});
    // Responses in order of arrival, notifications skipped (the bundled
    // default model may finish loading meanwhile and report its status).
    auto next_response = [&] {
      auto m = s.next(10s);
      while (m && m->contains("method") && !m->contains("id")) m = s.next(10s);
      return m;
    };
    auto m = next_response();
    ASSERT_TRUE(m.has_value()) << "no answer";
    if (c.expected_code != 0) {
      // The bad input's own error comes first...
      ASSERT_TRUE(m->contains("error")) << m->dump();
      EXPECT_EQ((*m)["error"]["code"], c.expected_code) << m->dump();
      if (c.id_null) {
        EXPECT_TRUE((*m)["id"].is_null()) << m->dump();
      } else {
        EXPECT_NE((*m)["id"], probe) << m->dump();
      }
      m = next_response();
      ASSERT_TRUE(m.has_value()) << "no answer to the request after the bad input";
    }
    // ...and an ignored notification gets no answer at all: the next
    // response is the probe's.
    ASSERT_EQ((*m)["id"], probe) << m->dump();
    ASSERT_TRUE(m->contains("result")) << m->dump();
    EXPECT_EQ((*m)["result"]["text"], "abc");
  }
  // A truncated frame at the end of input: the server exits, it does not hang.
  s.send_raw("Content-Length: 100\r\n\r\n{\"jsonrpc\"");
  s.close_stdin();
  EXPECT_EQ(s.wait_exit(), 1);
}

}  // namespace
}  // namespace inkstream
