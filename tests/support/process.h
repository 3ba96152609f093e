#pragma once
// Runs a real child process with pipes for stdin/stdout/stderr (tests drive
// the real `inkstream` binary this way, as a user or an editor would).
#include <chrono>
#include <string>
#include <vector>

namespace inkstream::test {

struct ProcessResult {
  int exit_code = -1;     // -1 if killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
};

// A started child: its pid and our ends of its stdin, stdout and stderr.
struct ChildPipes {
  int pid;
  int in_fd, out_fd, err_fd;
};
// Starts argv[0] with arguments, its standard streams connected to pipes.
// Also ignores SIGPIPE in this process (a child that exits early must not
// kill the test).
ChildPipes spawn_with_pipes(const std::vector<std::string>& argv);

// Runs argv[0] with arguments, writes `input` to its stdin then closes it,
// collects both outputs; kills the child after `timeout`.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace inkstream::test
