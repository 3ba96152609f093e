#pragma once
// JSON-RPC / LSP error codes and small helpers shared by the server's parts.
#include <nlohmann/json.hpp>

namespace inkstream::lsp {

using Json = nlohmann::json;

namespace error {
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kServerNotInitialized = -32002;
inline constexpr int kRequestCancelled = -32800;
inline constexpr int kContentModified = -32801;
inline constexpr int kServerCancelled = -32802;
inline constexpr int kRequestFailed = -32803;
}  // namespace error

// Thrown by handlers for bad params: becomes an InvalidParams reply.
struct InvalidParams : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace inkstream::lsp
