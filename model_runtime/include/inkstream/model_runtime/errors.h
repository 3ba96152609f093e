#pragma once
// Error types of the model runtime. Every failure that comes from outside
// (files on disk, request values) is one of these, with a message that names
// the file, tensor or field, so callers can show it as-is.
#include <stdexcept>
#include <string>

namespace inkstream {

// A checkpoint folder (config, weights or tokenizer files) is unusable.
// The CLI maps it to exit code 2.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A request carried an invalid value; the message names the field.
class InvalidRequest : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace inkstream
